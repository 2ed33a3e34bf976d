"""The CLIP model itself: loaded once, encodes images and texts to unit float32 vectors."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from indexer.embedder import engine as engines
from indexer.embedder.registry import (
    SHIPPED_CONFIGS,
    ModelChoice,
    WeightsKind,
    choose,
    model_config,
)
from indexer.embedder.weights import resolve_tag
from indexer.errors import WeightsMissing
from indexer.settings import CorpusSettings
from indexer.store.base import CollectionSpec

if TYPE_CHECKING:
    import torch
    from PIL import Image

log = logging.getLogger(__name__)

RANDOM_SEED = 0  # "none" weights are seeded so every process builds the same random space
_registered = threading.Lock()
GPU_TORCH_THREADS = 4  # torch CPU threads when the model is on a GPU (see torch_threads)


def cpu_count() -> int:
    """Cores this process may use (respects affinity and container CPU sets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def torch_threads(device: str) -> int:
    """torch's CPU threads: every core when the model runs on the CPU; with the model on a
    GPU, torch's CPU work is small (stacking, copies) and the decoder threads need the cores,
    so a few are enough."""
    cores = cpu_count()
    return cores if device == "cpu" else min(cores, GPU_TORCH_THREADS)


def register_shipped_configs() -> None:
    import open_clip

    with _registered:
        if "sumo-tiny" not in open_clip.list_models():
            open_clip.add_model_config(SHIPPED_CONFIGS)


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class Embedder:
    """An open_clip model with its preprocessing; one instance per process."""

    def __init__(
        self, choice: ModelChoice, model: Any, preprocess: Callable[[Image.Image], torch.Tensor],
        tokenizer: Callable[..., torch.Tensor], device: str, engine: engines.Engine | None = None,
    ) -> None:
        self.choice = choice
        self.name = choice.name
        self.model = model
        self.preprocess = preprocess  # PIL image -> (3, H, W) normalised tensor
        self._pil_part, self._tensor_part = _split_at_to_tensor(preprocess)
        # ``prepare`` as a picklable object without the model, for decoder processes.
        self.pil_prepare = PilPrepare(self._pil_part) if self._pil_part is not None else None
        self.tokenizer = tokenizer
        self.device = device
        # The image tower's runner when not torch (CPU only): ONNX Runtime or OpenVINO.
        self.engine = engine
        size = model.visual.image_size
        self.image_size: tuple[int, int] = (size, size) if isinstance(size, int) else tuple(size)
        self.dim = int(model_config(choice.model)["embed_dim"])

    @property
    def engine_name(self) -> str:
        """What computes image vectors: ``onnx-int8``, ``torch-fp32``, ``torch-fp16``..."""
        if self.engine is not None:
            return self.engine.name
        dtype = self._tower_dtype()
        return "torch-" + str(dtype).removeprefix("torch.").replace("float", "fp")

    def spec(self) -> CollectionSpec:
        return CollectionSpec(dim=self.dim, model=self.name)

    def prepare(self, image: Image.Image) -> NDArray[Any]:
        """The PIL half of preprocessing (resize, crop): torch-free, so decoder threads can
        run it without spawning OpenMP teams that fight the model for the cores."""
        if self.pil_prepare is None:
            return self.preprocess(image).numpy()
        return self.pil_prepare(image)

    def batch(self, prepared: Sequence[NDArray[Any]]) -> torch.Tensor:
        """Stack ``prepare`` outputs into the model's input: exactly ``preprocess``, batched."""
        import torch

        x = torch.from_numpy(np.stack(prepared))
        if self._tensor_part is None:
            return x
        return self._to_input(x.permute(0, 3, 1, 2))

    def pixel_batch(self, prepared: Sequence[NDArray[Any]]) -> torch.Tensor:
        """Stack ``prepare`` outputs as they are: a (N, H, W, 3) uint8 batch, in page-locked
        memory when the model is on CUDA (so the copy to the GPU can run asynchronously).

        ``encode_tensors`` converts and normalises it where the model is; a quarter of the
        bytes of ``batch``'s float32 to copy, and no float work on the CPU.
        """
        import torch

        first = prepared[0]
        shape = (len(prepared), *first.shape)
        pin = self.device.startswith("cuda") and torch.cuda.is_available()
        # torch's caching host allocator recycles pinned blocks once their copies are done.
        dtype = torch.from_numpy(np.empty(0, dtype=first.dtype)).dtype
        x = torch.empty(shape, dtype=dtype, pin_memory=pin)
        np.stack(prepared, out=x.numpy())
        return x

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) or (N, 3, H, W) pixels -> the model's float input, on the
        pixels' device: what ``preprocess`` does after its PIL steps (ToTensor, Normalize)."""
        if pixels.dim() != 4 or 3 not in (pixels.shape[1], pixels.shape[3]):
            raise ValueError(f"expected (N, H, W, 3) or (N, 3, H, W) pixels, got {pixels.shape}")
        if pixels.shape[3] == 3 and pixels.shape[1] != 3:
            pixels = pixels.permute(0, 3, 1, 2)  # HWC -> CHW (a view)
        return self._to_input(pixels)

    def _to_input(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> float model input, where the pixels are."""
        x = pixels.float().div_(255.0)  # what ToTensor does, per image
        if self._tensor_part is None:
            return x
        out: torch.Tensor = self._tensor_part(x)  # Normalize broadcasts over the batch
        return out

    def encode_tensors(self, batch: torch.Tensor) -> NDArray[np.float32]:
        """(N, 3, H, W) preprocessed images, or uint8 pixels (``pixel_batch``, HWC or CHW)
        normalised on the model's device -> (N, dim) unit vectors."""
        import torch

        with torch.inference_mode():
            x = batch.to(self.device, non_blocking=batch.is_pinned())
            if x.dtype == torch.uint8:
                x = self.normalize(x)
            if self.engine is not None:
                return self.engine(x.numpy())
            out = self.model.encode_image(x.to(self._tower_dtype()), normalize=True)
            return np.ascontiguousarray(out.float().cpu().numpy(), dtype=np.float32)

    def _tower_dtype(self) -> torch.dtype:
        return next(self.model.visual.parameters()).dtype

    def encode_prepared(self, prepared: Sequence[NDArray[Any]]) -> NDArray[np.float32]:
        """``prepare`` outputs -> (N, dim) unit vectors: what the indexer calls per batch.

        On a CPU: ``encode_tensors(batch(...))``, float work on the CPU as ever. On a GPU:
        the uint8 pixels travel (pinned, asynchronously) and are normalised there.
        """
        if not prepared:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.device == "cpu" or self._tensor_part is None or prepared[0].dtype != np.uint8:
            return self.encode_tensors(self.batch(prepared))
        return self.encode_tensors(self.pixel_batch(prepared))

    def encode_images(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.encode_prepared([self.prepare(im) for im in images])

    def encode_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        with torch.inference_mode():
            tokens = self.tokenizer(list(texts)).to(self.device)
            out = self.model.encode_text(tokens, normalize=True)
            return np.ascontiguousarray(out.float().cpu().numpy(), dtype=np.float32)


class PilPrepare:
    """The PIL half of preprocessing (resize, crop) -> uint8 (H, W, 3): ``Embedder.prepare``
    as a small picklable object, so decoder processes get it without the model."""

    def __init__(self, transforms: Any) -> None:
        self.transforms = transforms

    def __call__(self, image: Image.Image) -> NDArray[np.uint8]:
        return np.asarray(self.transforms(image), dtype=np.uint8)


def _split_at_to_tensor(preprocess: Any) -> tuple[Any, Any]:
    """(PIL transforms, tensor transforms) around open_clip's ToTensor, or (None, None)."""
    from torchvision.transforms import Compose, ToTensor

    steps = list(getattr(preprocess, "transforms", []))
    for i, step in enumerate(steps):
        if isinstance(step, ToTensor):  # open_clip's MaybeToTensor subclasses it
            return Compose(steps[:i]), Compose(steps[i + 1:])
    return None, None


def reparameterize(visual: Any) -> Any:
    """Fold MobileOne/FastViT training branches into single convolutions (MobileCLIP).

    Exact in eval mode and several times faster on a CPU; Apple's instructions for
    MobileCLIP inference. A no-op for towers without re-parameterisable blocks (ViTs).
    """
    try:
        from timm.utils import reparameterize_model
    except ImportError:
        return visual
    return reparameterize_model(visual, inplace=True)


def load_embedder(settings: CorpusSettings) -> Embedder:
    """Build the model named by the settings. Raises ``WeightsMissing`` with advice."""
    import open_clip
    import torch

    choice = choose(settings)
    register_shipped_configs()
    device = pick_device(settings.device)
    torch.set_num_threads(torch_threads(device))
    kwargs: dict[str, Any] = {"device": device, "pretrained_text": False}
    if choice.kind is WeightsKind.TAG:
        path, cfg = resolve_tag(choice.model, choice.weights)
        # Passing the file (not the tag) keeps open_clip off the network; the tag's
        # preprocessing and activation still apply.
        kwargs.update(
            pretrained=path, image_mean=cfg.get("mean"), image_std=cfg.get("std"),
            image_interpolation=cfg.get("interpolation"),
            image_resize_mode=cfg.get("resize_mode"),
            force_quick_gelu=bool(cfg.get("quick_gelu", False)),
        )
    elif choice.kind is WeightsKind.FILE:
        kwargs["pretrained"] = choice.weights
    # open_clip narrates every step on the root logger; SUMO logs one line of its own.
    logging.disable(logging.WARNING)
    try:
        if choice.kind is WeightsKind.RANDOM:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_SEED)
                model, _, preprocess = open_clip.create_model_and_transforms(
                    choice.model, **kwargs
                )
        else:
            model, _, preprocess = open_clip.create_model_and_transforms(choice.model, **kwargs)
    except (OSError, RuntimeError) as exc:
        if choice.kind is WeightsKind.RANDOM:
            raise
        raise WeightsMissing(
            f"could not load CLIP weights for model {choice.model} from {choice.weights}: {exc}. "
            "Pass a matching open_clip checkpoint with SUMO_PRETRAINED=/path/to/file, or "
            "SUMO_PRETRAINED=none for random weights (testing only)."
        ) from exc
    finally:
        logging.disable(logging.NOTSET)
    if choice.kind is WeightsKind.RANDOM:
        log.warning("model %s uses RANDOM weights: vectors are for testing only", choice.model)
    model.eval()
    model.visual = reparameterize(model.visual)
    tokenizer = open_clip.get_tokenizer(choice.model)
    emb = Embedder(choice, model, preprocess, tokenizer, device)
    attach_engine(emb, settings.engine)
    log.info("loaded CLIP %s on %s (image tower: %s, %d threads)", choice.name, device,
             emb.engine_name, torch.get_num_threads())
    return emb


def weights_hash(module: Any) -> str:
    """Content hash of a module's parameters and buffers (names, shapes, dtypes, bytes)."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return h.hexdigest()[:16]


def attach_engine(emb: Embedder, requested: str) -> None:
    """Give ``emb`` the image-tower engine ``requested`` (``SUMO_ENGINE``), checked against
    torch fp32 on a few inputs; a failed check keeps torch with a warning.

    On a CPU: ``onnx`` / ``openvino`` (``auto`` = ``engines.resolve``'s rule). On CUDA,
    ``auto`` halves the image tower (fp16 needs >= ``FP16_MIN_COSINE`` to fp32).
    """
    kind = engines.resolve(requested, emb.device)
    on_cuda = emb.device.startswith("cuda")
    if kind == "torch" and not (on_cuda and requested == "auto"):
        return
    x = engines.check_inputs(emb.image_size, emb.normalize)
    reference = emb.encode_tensors(x)
    if on_cuda:
        use_fp16(emb, x, reference)
        return
    try:
        name, run, exported = engines.build(
            kind, emb.model.visual, emb.image_size, emb.name, weights_hash(emb.model.visual),
            cpu_count(),
        )
    except engines.EngineUnavailable as exc:
        if requested != "auto":
            raise
        log.warning("%s; the image tower stays on torch", exc)
        return
    engine = engines.Engine(name, run, 0.0, exported)
    cosine = engines.min_cosine(engine(x.numpy()), reference)
    if cosine < engines.MIN_COSINE:
        log.warning("engine %s is off torch fp32 (min cosine %.4f < %.3f over %d inputs): "
                    "the image tower stays on torch", name, cosine, engines.MIN_COSINE, len(x))
        return
    emb.engine = dataclasses.replace(engine, min_cosine=cosine)


FP16_MIN_COSINE = 0.999


def use_fp16(emb: Embedder, x: torch.Tensor, reference: NDArray[np.float32]) -> None:
    """Halve the image tower if its vectors stay within ``FP16_MIN_COSINE`` of fp32."""
    emb.model.visual.half()
    cosine = engines.min_cosine(emb.encode_tensors(x), reference)
    if cosine < FP16_MIN_COSINE:
        emb.model.visual.float()
        log.warning("fp16 image tower is off fp32 (min cosine %.5f < %.3f): staying fp32",
                    cosine, FP16_MIN_COSINE)
