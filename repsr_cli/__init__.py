"""repsr: image and video upscaling with RepSR networks.

The public API: `Upscaler`, `ModelPerInput` (the model per kind of input, as `repsr upscale` picks it),
`choose_upscaler` (the model choice of both upscale commands: -m, a blend, or the default) and `load_model`;
everything else is reachable through the submodules.
"""

from __future__ import annotations

__version__ = "0.2.0"

__all__ = ["ModelPerInput", "Upscaler", "choose_upscaler", "load_model", "__version__"]


def __getattr__(name: str):
    # Imported lazily so that `repsr --help` does not pay for importing torch.
    if name in ("Upscaler", "ModelPerInput", "choose_upscaler"):
        from .infer import upscaler

        return getattr(upscaler, name)
    if name == "load_model":
        from .deploy.weights import load_model

        return load_model
    raise AttributeError(name)
