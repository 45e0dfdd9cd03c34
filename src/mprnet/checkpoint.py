"""Reading and writing network weights: any MPRNet (or registered peer) checkpoint in, a model out.

Accepted: a bundled model's name; `.pth`/`.pt`/`.ckpt` files holding a bare state dict or one wrapped in
`{"state_dict"|"params_ema"|"params"|"model"|"net": ...}` (extra entries such as "epoch" or "optimizer" are
ignored), with or without the "module." prefix of DataParallel/DDP; and `.safetensors`. A file is read as what its
first bytes say it is, whatever its suffix. Pickled files are always read with `weights_only=True`, so a checkpoint
can never run code.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import torch
from torch import Tensor, nn

from .errors import CheckpointError
from .files import atomic_path
from .models.did_mdn import with_release_companions
from .models.registry import Architecture, StateDict, build, describe, detect, hyperparameters
from .tf_checkpoint import is_tf_checkpoint, read_srn_checkpoint

BUNDLED_DIR = Path(__file__).parent / "weights"
#: The files `load_model` reads.
WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")
_WRAPPER_KEYS = ("state_dict", "params_ema", "params", "model", "net", "model_state_dict")
_PREFIXES = ("module.", "_orig_mod.")
#: The first bytes of torch.save's files: a zip archive (PyTorch 1.6 on) or a pickle (protocol 2 and later).
_TORCH_ZIP, _PICKLE = b"PK\x03\x04", b"\x80"
_HEAD_BYTES = 64


#: What the bundled models do to real photos, said wherever they are offered: `mprnet models`, the web page and the
#: README's first screen (tested to match). One place for it: change it when a trained model changes it.
BUNDLED_MODELS_TRUTH = (
    "The bundled models are small and briefly trained. Deraining works on synthetic rain; denoising is good on "
    "synthetic noise but leaves real camera and scan noise almost untouched; deblurring makes most real shaken "
    "photos softer, not sharper, and damages sharp ones. --task auto checks every result from the photo alone and "
    "leaves a photo as it was when the result does not look better. The authors' published checkpoints are far "
    "stronger (--weights)."
)


def bundled_models() -> dict[str, Path]:
    """Names of the models shipped inside the package, and their files."""
    return {path.stem: path for path in sorted(BUNDLED_DIR.glob("*.safetensors"))}


def read_weights(path: str | os.PathLike) -> tuple[StateDict, dict[str, str]]:
    """The state dict in a weights file, unwrapped and without training prefixes, and its metadata.

    SRN's released TensorFlow checkpoint (its prefix or `.index`) is converted in memory; DID-MDN's released
    generator brings the density estimator of its release folder along (`did_mdn.with_release_companions`)."""
    path = Path(path)
    if is_tf_checkpoint(path):
        return read_srn_checkpoint(path)
    if stored_format(path) == "safetensors":
        state_dict, metadata = _read_safetensors(path)
    else:
        state_dict, metadata = _read_pickle(path), {}
    return with_release_companions(path, _strip_prefixes(state_dict)), metadata


def stored_format(path: Path) -> str:
    """What a weights file holds, from its first bytes (a renamed file's suffix lies): "safetensors" or "pytorch"
    (torch.save's zip archive or legacy pickle); CheckpointError for a folder, an empty file or anything else."""
    if path.is_dir():
        raise CheckpointError(
            f"{path}: a folder, not a weights file; name the file itself ({', '.join(WEIGHT_SUFFIXES)})"
        )
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such weights file") from None
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error.strerror})") from None
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    # .safetensors: the JSON header's length as 8 little-endian bytes, then the header itself. Asked first: a header
    # length whose low byte is 0x80 starts like a pickle.
    if head[8:9] == b"{" and int.from_bytes(head[:8], "little") < size:
        return "safetensors"
    if head.startswith(_TORCH_ZIP) or head.startswith(_PICKLE):
        return "pytorch"
    raise CheckpointError(f"{path}: not a readable PyTorch checkpoint or .safetensors file: {_describe(head)}")


def _describe(head: bytes) -> str:
    text = head.decode("utf-8", "ignore")  # "ignore": the head may cut a character in two
    if text.strip() and all(character.isprintable() or character.isspace() for character in text):
        return f"it holds text, starting {text.strip().splitlines()[0][:40]!r}"
    return f"it starts with the bytes {head[:8].hex(' ')}"


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """A `.safetensors` file's metadata without reading its tensors (pickled checkpoints have none: {})."""
    path = Path(path)
    if stored_format(path) != "safetensors":
        return {}
    return _read_safetensors(path, tensors=False)[1]


def _read_safetensors(path: Path, tensors: bool = True) -> tuple[StateDict, dict[str, str]]:
    """The tensors (none unless `tensors`) and the metadata of a `.safetensors` file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = handle.keys() if tensors else []  # a safe_open handle is not iterable itself
            return {key: handle.get_tensor(key) for key in keys}, dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable .safetensors file ({error})") from None


def _read_pickle(path: Path) -> StateDict:
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only load failed" not in str(error).lower():
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_first_line(error)})") from None
        raise CheckpointError(
            f"{path}: refused: besides tensors, the checkpoint holds pickled Python objects, which "
            f"could run code when loaded; mprnet loads plain weights only (a state dict, or "
            f".safetensors)"
        ) from None
    except Exception as error:  # torch raises many types for damaged files
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_first_line(error)})") from None
    return _unwrap(content, path)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _unwrap(content, path: Path) -> StateDict:
    if isinstance(content, dict):
        for key in _WRAPPER_KEYS:
            if isinstance(content.get(key), dict) and _is_state_dict(content[key]):
                return dict(content[key])
        if _is_state_dict(content):
            return dict(content)
        found = ", ".join(f"{k!r}" for k in list(content)[:8])
        raise CheckpointError(
            f"{path}: expected a state dict (tensors by name) or one under "
            f"{'/'.join(_WRAPPER_KEYS)}; found entries {found}"
        )
    raise CheckpointError(f"{path}: expected a state dict, found a {type(content).__name__}")


def _is_state_dict(mapping: dict) -> bool:
    return bool(mapping) and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in mapping.items())


def _strip_prefixes(state_dict: StateDict) -> StateDict:
    for prefix in _PREFIXES:
        if state_dict and all(key.startswith(prefix) for key in state_dict):
            state_dict = {key[len(prefix) :]: value for key, value in state_dict.items()}
    return state_dict


def model_from_state_dict(
    state_dict: StateDict, architecture: str | None = None, config: object = None, source: str = "weights"
) -> nn.Module:
    """Build the network a state dict belongs to and load it strictly.

    The architecture and its hyper-parameters come from the tensors' names and shapes. `architecture` and `config`
    (a file's metadata, say) are only a description: they may add what the tensors cannot tell (NAFNet's TLC
    window, say) but a description the tensors contradict is refused. Every check runs on a network built on the
    meta device, so no weight is allocated before the tensors are known to fit.
    """
    try:
        arch, detected = detect(state_dict)
    except ValueError as error:
        raise CheckpointError(f"{source}: {error}") from None
    if architecture is not None and architecture != arch.name:
        raise CheckpointError(
            f"{source}: its metadata says architecture {architecture!r}, but its tensors are a {arch.name} network"
        )
    check_fit(_meta_build(arch, detected, source), state_dict, source)
    described = {**detected, **_described_config(arch, config, source)}
    if described != detected:
        _meta_build(arch, described, source)  # a description no network can have is named as such
    if described != detected and not _fits(arch, described, state_dict):
        differing = [key for key, value in described.items() if detected.get(key) != value]
        claims = ", ".join(f"{key}={described[key]!r}" for key in differing)
        found = ", ".join(f"{key}={detected[key]!r}" for key in differing if key in detected)
        raise CheckpointError(
            f"{source}: its metadata describes another network ({claims}) than its tensors hold"
            + (f" ({found})" if found else "")
        )
    model = build(arch, described)
    model.load_state_dict(state_dict)
    return model.eval()


def _described_config(arch: Architecture, config: object, source: str) -> dict:
    """The hyper-parameters a description gives, each one that the architecture has, with a plain value."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise CheckpointError(
            f"{source}: its metadata config must be a mapping of hyper-parameters, found a {type(config).__name__}"
        )
    known = hyperparameters(arch)
    config = {key: value for key, value in config.items() if key not in arch.run_options}  # recorded by old files
    for key, value in config.items():
        if key not in known:
            raise CheckpointError(
                f"{source}: its metadata config names {key!r}, which is not a hyper-parameter of "
                f"{arch.name} ({', '.join(known)})"
            )
        if not (value is None or isinstance(value, (bool, int, float, str, list))):
            raise CheckpointError(f"{source}: its metadata config gives {key} an unusable value {value!r}")
    return dict(config)


def _meta_build(arch: Architecture, config: dict, source: str) -> nn.Module:
    """The network with `config` on the meta device (shapes only, no memory); CheckpointError if it cannot exist."""
    try:
        with torch.device("meta"):
            return build(arch, config)
    except Exception as error:  # bad values reach the network's constructor: any error means "not this config"
        described = ", ".join(f"{key}={value!r}" for key, value in config.items())
        raise CheckpointError(f"{source}: no {arch.name} network has {described} ({_first_line(error)})") from None


def _fits(arch: Architecture, config: dict, state_dict: StateDict) -> bool:
    try:
        return not _misfits(_meta_build(arch, config, "weights"), state_dict)
    except CheckpointError:
        return False


def _misfits(model: nn.Module, state_dict: StateDict) -> list[str]:
    """What keeps `state_dict` from loading into `model`: missing, unexpected and mismatched keys, described."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k} (expected {list(expected[k].shape)}, found {list(state_dict[k].shape)})"
        for k in expected
        if k in state_dict and expected[k].shape != state_dict[k].shape
    ]
    problems = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched)):
        if keys:
            more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
            problems.append(f"{len(keys)} {label}: {', '.join(keys[:5])}{more}")
    return problems


def check_fit(model: nn.Module, state_dict: StateDict, source: str) -> None:
    """A CheckpointError naming every missing, unexpected and mismatched tensor where `state_dict` does not fit
    `model` (a network carrying `.architecture` and `.hparams`).

    BatchNorm's `num_batches_tracked`, which PyTorch saved only from 0.4.1 on, is added to `state_dict` where it
    is missing, as tensor(0), as torch's own loading fills it, so the 2018 releases (DID-MDN's) load."""
    for key in model.state_dict():
        counted = key.removesuffix("num_batches_tracked") + "running_mean"
        if key.endswith(".num_batches_tracked") and key not in state_dict and counted in state_dict:
            state_dict[key] = torch.tensor(0)
    problems = _misfits(model, state_dict)
    if problems:
        info = describe(model)
        raise CheckpointError(
            f"{source}: the weights do not fit {info.architecture} {info.hparams}; " + "; ".join(problems)
        )


def load_model(source: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """A ready network (eval mode) from a bundled model's name, an official checkpoint's name (`mprnet weights
    list`; fetched into the per-user cache on first use) or a weights file.

    The architecture and its hyper-parameters are detected from the tensors' shapes, so weights of any width load.
    The model carries `.architecture`, `.hparams` and `.metadata` (the file's metadata, e.g. its task).
    """
    from . import hub

    name = str(source)
    bundled = bundled_models()
    if hub.is_official(name) and not Path(name).exists():
        state_dict, metadata = hub.official_weights(name)
        path = Path(name)
    elif name in bundled and not Path(name).exists():
        path = bundled[name]
        state_dict, metadata = read_weights(path)
    else:
        path = Path(source)
        if not path.exists() and not is_tf_checkpoint(path):
            available = ", ".join(bundled) or "none yet"
            raise CheckpointError(
                f"{name}: neither a weights file nor a bundled model (bundled: {available}), nor an official "
                f"checkpoint (mprnet weights list)"
            )
        state_dict, metadata = read_weights(path)
    model = model_from_state_dict(
        state_dict, metadata.get("architecture"), _metadata_config(metadata, path), source=str(path)
    )
    model.metadata = metadata  # type: ignore[assignment]  # nn.Module.__setattr__ stores any value; typed for tensors
    return model.to(device)


def _metadata_config(metadata: dict[str, str], path: Path) -> object:
    if "config" not in metadata:
        return None
    try:
        return json.loads(metadata["config"])
    except ValueError:
        raise CheckpointError(f"{path}: its metadata config is not JSON") from None


def save_weights(model: nn.Module, path: str | os.PathLike, dtype: torch.dtype | None = None, **metadata) -> Path:
    """Write the weights alone as `.safetensors`, with architecture, configuration and `metadata`, atomically;
    floating-point tensors cast to `dtype` if given (fp16 halves a bundled model's size; loading casts back)."""
    from safetensors.torch import save_file

    path = Path(path)
    # Shared parameters (MPRNet's single PReLU) appear under several names; safetensors wants distinct tensors.
    tensors = {
        key: _cast(value.detach().to("cpu").clone().contiguous(), dtype) for key, value in model.state_dict().items()
    }
    described = describe(model)
    info = {"architecture": described.architecture, "config": json.dumps(described.hparams)}
    info.update({key: value if isinstance(value, str) else json.dumps(value) for key, value in metadata.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata=info)
    return path


def resave_weights(
    source: str | os.PathLike, path: str | os.PathLike, dtype: torch.dtype | None = torch.float16, **metadata
) -> Path:
    """A trained model's weights saved again (by default in fp16, as bundled models are), its metadata kept and
    `metadata` added."""
    model = load_model(source)
    kept = {key: value for key, value in describe(model).metadata.items() if key not in ("architecture", "config")}
    return save_weights(model, path, dtype=dtype, **{**kept, **metadata})


def _cast(tensor: Tensor, dtype: torch.dtype | None) -> Tensor:
    return tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor
