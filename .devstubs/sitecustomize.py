# Dev-only: provide empty CLI command modules that other helpers have not written yet.
import importlib.abc, importlib.util, sys, types

class _Stub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    names = {"recommender.commands.bench", "recommender.commands.gaps"}
    def find_spec(self, name, path, target=None):
        if name in self.names:
            for f in sys.meta_path:
                if f is self: continue
                try:
                    s = f.find_spec(name, path, target)
                except Exception:
                    s = None
                if s is not None:
                    return None
            return importlib.util.spec_from_loader(name, self)
        return None
    def create_module(self, spec): return types.ModuleType(spec.name)
    def exec_module(self, m): m.register = lambda sub, parents: None

sys.meta_path.insert(0, _Stub())
