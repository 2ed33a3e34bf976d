"""Gap report endpoints (``/v1/gaps``, ``/gaps``).

Placeholder created by the service helper (issue 4) so the app can include this router;
the gaps helper (issue 5) fills it in.
"""

from fastapi import APIRouter

router = APIRouter()
