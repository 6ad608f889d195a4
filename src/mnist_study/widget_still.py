"""A widget where widgets do not run (GitHub, nbviewer): a still picture and how to use it."""

from __future__ import annotations

import base64
from typing import Any


class ShowsStill:
    """Mixed into a widget that draws itself with ``still()`` and says ``how_to`` use it."""

    how_to: str

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The widget's view, and for where widgets do not run its still and how to use it."""
        data, metadata = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        data["image/png"] = base64.b64encode(self.still()).decode("ascii")
        data["text/plain"] = f"{self!r}. {self.how_to}"
        return data, metadata
