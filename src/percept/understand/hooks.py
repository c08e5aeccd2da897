"""Reading a network's inner layers: name lookup, activation capture and in-place operations, each undone on exit.

Every method of :mod:`percept.understand` reaches layers through these context managers, so no hook outlives
the call that needed it and no model is left changed (as in captum and pytorch-grad-cam).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from ..errors import PerceptError
from ..models import FeatureNet


def layer_names(model: nn.Module) -> list[str]:
    """Names of every submodule of ``model`` in definition order (``model.named_modules()``, root excluded)."""
    return [name for name, _ in model.named_modules() if name]


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name``; an unknown name is a one-line error suggesting the closest names."""
    modules = dict(model.named_modules())
    if name in modules and name:
        return modules[name]
    close = difflib.get_close_matches(name, [n for n in modules if n], n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `percept explain layers MODEL` lists them"
    raise PerceptError(f"unknown layer {name!r} for {type(model).__name__}{hint}")


@contextmanager
def no_inplace(model: nn.Module) -> Iterator[nn.Module]:
    """Turn off ``inplace`` on every module that has it (e.g. ``nn.ReLU(inplace=True)``) and restore it on exit.

    An in-place activation overwrites the tensor a hook captured before it, and breaks backward hooks (guided
    backprop); outside the context the model is exactly as it was.
    """
    changed = [m for m in model.modules() if getattr(m, "inplace", False) is True]
    for module in changed:
        module.inplace = False
    try:
        yield model
    finally:
        for module in changed:
            module.inplace = True


@contextmanager
def capture(model: nn.Module, layers: Sequence[str], *, detach: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of ``layers`` during forward passes inside the context.

    Yields a dict that each forward pass fills with ``name -> output`` (the last call of a module reused within
    one pass wins). Outputs stay in the autograd graph unless ``detach``; in-place modules are switched off
    (:func:`no_inplace`) so a later operation cannot overwrite them. The hooks are removed on exit, also after
    an exception.

    Example::

        with capture(net, ["_blocks.5"]) as acts:
            logits = net(x)
        acts["_blocks.5"].shape   # (B, C, h, w)
    """
    modules = {name: get_layer(model, name) for name in layers}
    store: dict[str, torch.Tensor] = {}
    handles = []

    def hook(name: str):
        def record(_module: nn.Module, _inputs, output) -> None:
            if not isinstance(output, torch.Tensor):
                raise PerceptError(f"layer {name!r} returns {type(output).__name__}, not a tensor; choose another")
            store[name] = output.detach() if detach else output

        return record

    with no_inplace(model):
        try:
            for name, module in modules.items():
                handles.append(module.register_forward_hook(hook(name)))
            yield store
        finally:
            for handle in handles:
                handle.remove()


def layer_outputs(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """The outputs of ``layers`` for ``x``, in the autograd graph: ``{name: tensor}``.

    A :class:`FeatureNet` takes its own layer names and stops at the deepest; any other module takes module
    names (``percept explain layers``) and runs its whole forward pass with hooks that are removed afterwards.
    Unknown names and layers that the forward pass never reaches are one-line errors.
    """
    if isinstance(model, FeatureNet):
        return model(x, model.validate_layers(layers))
    with capture(model, layers) as acts:
        model(x)
    missing = [name for name in layers if name not in acts]
    if missing:
        raise PerceptError(f"layer {missing[0]!r} is not used in the forward pass; choose another "
                           "(`percept explain layers` lists the ones that are)")
    return dict(acts)
