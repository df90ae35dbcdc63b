"""Compiling the static decode step (``CompiledStep``): ``torch.compile`` with the options that
make it fast, lean guards, a fresh code object per weight snapshot, and one clear error when the
machine cannot compile.

On CPU: inductor with frozen weights and max-autotune GEMMs (passed only as
``torch.compile(options=...)`` in torch 2.13, freezing was silently not applied, so the inductor
config is patched around the calls that compile). On CUDA: CUDA graphs (what mode
"reduce-overhead" sets). Dynamo's guards on nn.Module attributes and module globals are dropped
(~0.4 ms a step); the inputs' guards stay.
"""

from __future__ import annotations

import types

import torch

from dind.errors import UserError

# inductor options for the CPU step: weights frozen as constants (packed for its GEMM templates)
CPU_COMPILE_OPTIONS = {"freezing": True, "max_autotune": True}
# ... and for the CUDA step: CUDA graphs (what torch.compile's mode "reduce-overhead" sets)
CUDA_COMPILE_OPTIONS = {"triton.cudagraphs": True}


def fresh(method):
    """The bound method with a code object of its own. torch.compile keeps compiled graphs per
    code object, and a graph with frozen weights must never be reused once they changed."""
    function = method.__func__
    copy = types.FunctionType(
        function.__code__.replace(),
        function.__globals__,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    return types.MethodType(copy, method.__self__)


def _guards_to_keep(entries) -> list[bool]:
    """Drop dynamo's guards on nn.Module attributes and on module globals (a quarter of the CPU
    step's time otherwise); the input tensors' guards (shape, dtype, device) stay. Weights are
    frozen into the graph anyway and ``StaticDenoiser.refresh`` recompiles when they change; the
    module globals the step reads (torch functions, dind helpers) are assumed not to be rebound."""
    modules = torch.compiler.skip_guard_on_all_nn_modules_unsafe(entries)
    globals_ = torch.compiler.skip_guard_on_globals_unsafe(entries)
    return [module and global_ for module, global_ in zip(modules, globals_, strict=True)]


class CompileError(UserError, RuntimeError):
    """``CompiledStep`` could not compile the decode step (no C++ compiler, no Triton...)."""


def compile_step(step, device: torch.device):
    """``torch.compile`` the step: CUDA graphs on CUDA; on CPU inductor with frozen weights and
    max-autotune GEMMs. The inductor options are patched around every call (passed only as
    ``torch.compile(options=...)``, freezing was silently not applied) and only the guards
    ``_guards_to_keep`` keeps are evaluated. A failed compile is a ``CompileError``
    with one line saying what failed and what to use instead."""
    if device.type == "cuda":  # CUDA graphs (= mode "reduce-overhead", which excludes options)
        options = _module_options("CUDA_COMPILE_OPTIONS")
        compiled = torch.compile(
            step, options={**options, "guard_filter_fn": _guards_to_keep}, fullgraph=True, dynamic=False
        )
    else:
        options = _module_options("CPU_COMPILE_OPTIONS")
        compiled = torch.compile(
            step, options={"guard_filter_fn": _guards_to_keep}, fullgraph=True, dynamic=False
        )

    compiled_shapes: set[tuple] = set()

    def run(block, positions, keys, values, features):
        # the options matter only while compiling, i.e. for a new input signature; the patch
        # costs ~60 us, so later calls skip it (a compile it missed would only be slower)
        signature = (block.shape, block.device, keys[0].shape, keys[0].dtype, features)
        try:
            if signature in compiled_shapes:
                return compiled(block, positions, keys, values, features)
            with torch._inductor.config.patch(options):
                out = compiled(block, positions, keys, values, features)
            compiled_shapes.add(signature)
            return out
        except (torch._dynamo.exc.BackendCompilerFailed, torch._inductor.exc.InductorError) as error:
            first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
            raise CompileError(
                f"the compiled step (CompiledStep, --step-mode compiled) could not compile the decode step "
                f"on {device.type} ({first.strip()}); "
                "torch.compile needs a working C++ compiler on CPU and Triton on CUDA; "
                "StaticStep (--step-mode static) gives the same samples without compiling"
            ) from error

    return run


def _module_options(name: str) -> dict:
    # read at compile time, so a test can point them elsewhere (a bogus C++ compiler)
    return dict(globals()[name])
