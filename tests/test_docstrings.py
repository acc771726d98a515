"""Every public module, class and function of spikeforge says what it computes."""

import importlib
import inspect
import pkgutil

import spikeforge

OPTIONAL = ("triton",)  # modules needing an optional package that may be missing


def _modules():
    for info in pkgutil.walk_packages(spikeforge.__path__, "spikeforge."):
        try:
            yield importlib.import_module(info.name)
        except ImportError as e:
            if not any(o in str(e) for o in OPTIONAL):
                raise


def test_public_objects_have_docstrings():
    missing = []
    for mod in _modules():
        if not (mod.__doc__ or "").strip():
            missing.append(mod.__name__)
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isclass(obj) or inspect.isfunction(obj):
                if not (obj.__doc__ or "").strip():
                    missing.append(f"{mod.__name__}.{name}")
                if inspect.isclass(obj):
                    for mname, meth in vars(obj).items():
                        if mname.startswith("_") or not inspect.isfunction(meth):
                            continue
                        if not (inspect.getdoc(meth) or "").strip():
                            missing.append(f"{mod.__name__}.{name}.{mname}")
    assert not missing, "public objects without a docstring:\n" + "\n".join(missing)
