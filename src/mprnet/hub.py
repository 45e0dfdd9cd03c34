"""The authors' published checkpoints: one catalogue of what each is and where its authors publish it, a per-user
cache, and the fetch that fills it.

A fetch downloads resumably into the cache's `.incoming/` folder (a cut transfer continues where it stopped on the
next fetch), checks the file by loading it (its detected architecture and configuration must be the catalogue's),
then moves it into place and records its sha256; every later use checks the file against that record (or the
catalogue's published hash) and refuses a changed one. Each licence is shown and must be accepted once.

The transfer is left to maintained libraries, imported only when a download is needed (the `weights` extra): gdown
(Google Drive's confirmation page, and resumable HTTP with byte ranges for any other address) and huggingface_hub
(an author's copy on the Hub). `MPRNET_WEIGHTS_MIRROR`, a URL or a folder holding `NAME/FILE` as the cache does,
replaces the authors' locations.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import torch

from .checkpoint import check_fit, read_weights
from .errors import CheckpointError, MprnetError
from .files import atomic_path
from .models.registry import StateDict, build, detect, get_architecture

CACHE_VARIABLE = "MPRNET_CACHE"
MIRROR_VARIABLE = "MPRNET_WEIGHTS_MIRROR"
ACCEPT_VARIABLE = "MPRNET_ACCEPT_LICENSES"
#: Extra tries within one fetch after a cut transfer, each resuming where the last stopped.
TRANSFER_RETRIES = 2
#: Seconds to wait for a server to connect and between bytes.
TRANSFER_TIMEOUT = (15, 60)
_EXTRA_HINT = "pip install 'mprnet[weights]'"


class WeightsError(MprnetError):
    """An official checkpoint that cannot be fetched, or one that is not what the catalogue says."""


class UnknownWeightsError(WeightsError):
    """A name that is no official checkpoint's: a usage error (exit status 2)."""

    exit_code = 2


class LicenseError(MprnetError):
    """A checkpoint whose licence has not been accepted yet: a usage error (exit status 2)."""

    exit_code = 2


class ChecksumError(CheckpointError):
    """A cached checkpoint whose bytes are not the ones verified (or published) before."""


@dataclass(frozen=True)
class License:
    id: str
    title: str
    summary: str
    url: str


@dataclass(frozen=True)
class Source:
    """One place an author publishes a file: `kind` "gdrive" (a file id), "gdrive-folder" (a folder id; the file is
    found in it by name), "hf" (`location` a Hub repository, `repo_type` "model" or "space") or "url"."""

    kind: str
    location: str
    repo_type: str = "model"

    def describe(self) -> str:
        if self.kind == "gdrive":
            return f"https://drive.google.com/file/d/{self.location}"
        if self.kind == "gdrive-folder":
            return f"https://drive.google.com/drive/folders/{self.location}"
        if self.kind == "hf":
            return f"https://huggingface.co/{'spaces/' if self.repo_type == 'space' else ''}{self.location}"
        return self.location


@dataclass(frozen=True)
class Weights:
    """One official checkpoint, as torchvision's Weights describe theirs: what it is, where it is published, what
    loading it must give."""

    name: str
    title: str
    task: str
    architecture: str
    #: The preset of `architecture` whose hyper-parameters detection must find (None: the architecture's defaults
    #: as far as `config` does not say otherwise).
    preset: str | None
    file_name: str
    sources: tuple[Source, ...]
    license: License
    paper: str
    page: str
    #: Bytes and sha256 as the authors publish them; None where they publish none (the sha256 is then recorded at
    #: the first verified fetch).
    size: int | None = None
    sha256: str | None = None
    config: Mapping = field(default_factory=lambda: MappingProxyType({}))
    #: Where the authors also publish it without a way to fetch it from here (Baidu pan and its code).
    elsewhere: str = ""
    #: For an archive: the checkpoint's path inside it (a TensorFlow prefix, converted on fetch).
    member: str | None = None
    #: For a part of another network (DID-MDN's density classifier): the entry whose tensors complete it, and the
    #: prefix its tensors take there.
    host: str | None = None
    prefix: str = ""
    note: str = ""

    def expected(self) -> tuple[str, dict]:
        """The architecture and the hyper-parameters, as detection reads them, that a file of this entry must hold:
        those of a network built (shapes only) with the preset and `config`."""
        presets = get_architecture(self.architecture).presets
        state_dict = _meta_network(self.architecture, {**(presets[self.preset] if self.preset else {}), **self.config})
        architecture, config = detect(state_dict)
        return architecture.name, config


_APL = License(
    "mprnet-apl",
    "Academic Public License (MPRNet)",
    "free for non-commercial use (teaching and research at academic institutions and non-profit research "
    "organisations); commercial use only by arrangement with the authors; copies keep the licence",
    "https://github.com/swz30/MPRNet/blob/main/LICENSE.md",
)
_NAFNET_MIT = License(
    "nafnet-mit",
    "MIT License (NAFNet, megvii-model 2022; its BasicSR parts Apache-2.0)",
    "any use, including commercial, provided the copyright and licence notice are kept",
    "https://github.com/megvii-research/NAFNet/blob/main/LICENSE",
)
_MIMO_NONE = License(
    "mimo-unet-none",
    "no licence published (MIMO-UNet)",
    "the repository states no licence, so its authors keep all rights to code and weights; use them for research "
    "at your own judgement, cite the paper, and ask the authors before anything else",
    "https://github.com/chosj95/MIMO-UNet",
)
_SRN_NONE = License(
    "srn-none",
    "no licence file from the authors (SRN-Deblur)",
    "the authors' repository has no LICENSE; its docs/license_code.md, added with a contributed web API, points "
    "to a fork's MIT licence, which is not the authors' grant; use for research at your own judgement",
    "https://github.com/jiangsutx/SRN-Deblur",
)
_DID_MDN_NONE = License(
    "did-mdn-none",
    "no licence published (DID-MDN)",
    "the repository states no licence, so its authors keep all rights; use the weights for research at your own "
    "judgement, cite the paper, and ask the authors before anything else",
    "https://github.com/hezhangsprinter/DID-MDN",
)

_MPRNET_PAPER = "Zamir et al., Multi-Stage Progressive Image Restoration, CVPR 2021, https://arxiv.org/abs/2102.02808"
_NAFNET_PAPER = (
    "Chen, Chu, Zhang, Sun, Simple Baselines for Image Restoration, ECCV 2022, https://arxiv.org/abs/2204.04676"
)
_MIMO_PAPER = (
    "Cho et al., Rethinking Coarse-to-Fine Approach in Single Image Deblurring, ICCV 2021, "
    "https://arxiv.org/abs/2108.05054"
)
_SRN_PAPER = (
    "Tao et al., Scale-recurrent Network for Deep Image Deblurring, CVPR 2018, https://arxiv.org/abs/1802.01770"
)
_DID_MDN_PAPER = (
    "Zhang and Patel, Density-aware Single Image De-raining using a Multi-stream Dense Network, CVPR 2018, "
    "https://arxiv.org/abs/1802.07412"
)
_MPRNET_PAGE = "https://github.com/swz30/MPRNet"
_MPRNET_FOLDERS = {"deblur": "Deblurring", "denoise": "Denoising", "derain": "Deraining"}
_NAFNET_PAGE = "https://github.com/megvii-research/NAFNet"
_MIMO_PAGE = "https://github.com/chosj95/MIMO-UNet"
_SRN_PAGE = "https://github.com/jiangsutx/SRN-Deblur"
_DID_MDN_PAGE = "https://github.com/hezhangsprinter/DID-MDN"
_BAIDU = "https://pan.baidu.com/s"


def _mprnet(name: str, task: str, data: str, file_name: str, drive_id: str) -> Weights:
    return Weights(
        name, f"MPRNet, {data}", task, "mprnet", task, file_name, (Source("gdrive", drive_id),), _APL,
        _MPRNET_PAPER, f"{_MPRNET_PAGE}/tree/main/{_MPRNET_FOLDERS[task]}",
    )  # fmt: skip


def _nafnet(data: str, width: int, drive_id: str, baidu: str, *hub: Source) -> Weights:
    task, preset = ("denoise", f"sidd-w{width}") if data == "SIDD" else ("deblur", f"gopro-w{width}")
    return Weights(
        f"nafnet-{data.lower()}-width{width}", f"NAFNet-{data}-width{width}", task, "nafnet", preset,
        f"NAFNet-{data}-width{width}.pth", (*hub, Source("gdrive", drive_id)), _NAFNET_MIT, _NAFNET_PAPER,
        f"{_NAFNET_PAGE}/blob/main/docs/{data}.md", elsewhere=f"Baidu pan {baidu}",
    )  # fmt: skip


#: Every official checkpoint the IPOL article uses, by name. Facts from the authors' READMEs and test scripts; no
#: author publishes a size or a hash for any of them.
CATALOGUE: dict[str, Weights] = {
    entry.name: entry
    for entry in (
        _mprnet("mprnet-gopro", "deblur", "GoPro", "model_deblurring.pth", "1QwQUVbk6YVOJViCsOKYNykCsdJSVGRtb"),
        _mprnet("mprnet-sidd", "denoise", "SIDD", "model_denoising.pth", "1LODPt9kYmxwU98g96UrRA0_Eh5HYcsRw"),
        _mprnet("mprnet-rain13k", "derain", "Rain13K", "model_deraining.pth", "1O3WEJbcat7eTY6doXWeorAbQ1l_WmMnM"),
        _nafnet("SIDD", 32, "1lsByk21Xw-6aW7epCwOQxvm6HYCQZPHZ", f"{_BAIDU}/1Xses38SWl-7wuyuhaGNhaw (code um97)"),
        # Xiaojie Chu, an author, also keeps this file in the NAFNet demo Space on the Hub.
        _nafnet(
            "SIDD", 64, "14Fht1QQJ2gMlk4N1ERCRuElg8JfjrWWR", f"{_BAIDU}/198kYyVSrY_xZF0jGv9U0sQ (code dton)",
            Source("hf", "chuxiaojie/NAFNet", "space"),
        ),
        _nafnet("GoPro", 32, "1Fr2QadtDCEXg6iwWX8OzeZLbHOx2t5Bj", f"{_BAIDU}/1AbgG0yoROHmrRQN7dgzDvQ?pwd=so6v"),
        _nafnet("GoPro", 64, "1S0PVRbyTakYY9a82kujgZLbMihfNBLfC", f"{_BAIDU}/1g-E1x6En-PbYXm94JfI1vg?pwd=wnwh"),
        Weights(
            "mimo-unet-gopro", "MIMO-UNet, GoPro", "deblur", "mimo-unet", None, "MIMO-UNet.pkl",
            (Source("gdrive", "1EQJoQj3YMLFfzrbgzWMD3Xj96RqLdIlx"),), _MIMO_NONE, _MIMO_PAPER, f"{_MIMO_PAGE}#model",
        ),
        Weights(
            "mimo-unet-plus-gopro", "MIMO-UNet+, GoPro", "deblur", "mimo-unet", "plus", "MIMO-UNetPlus.pkl",
            (Source("gdrive", "166sufeHcdDTgXHNbCRzTC4T6DzuflB5m"),), _MIMO_NONE, _MIMO_PAPER, f"{_MIMO_PAGE}#model",
        ),
        Weights(
            "srn-color-gopro", "SRN-DeblurNet, colour, GoPro", "deblur", "srn", "color", "srndeblur_models.zip",
            (Source("url", "http://www.xtao.website/shared_url/srndeblur_models.zip"),), _SRN_NONE, _SRN_PAPER,
            f"{_SRN_PAGE}/blob/master/checkpoints/download_model.sh", member="color/deblur.model-523000",
            note="TensorFlow checkpoint (the colour model at step 523000, as the authors' test loads it), converted "
            "to .safetensors on fetch",
        ),
        Weights(
            "did-mdn-generator", "DID-MDN deraining network", "derain", "did-mdn", None, "netG_epoch_9.pth",
            (Source("gdrive-folder", "1VRUkemynOwWH70bX9FXL4KMWa4s_PSg2"),), _DID_MDN_NONE, _DID_MDN_PAPER,
            f"{_DID_MDN_PAGE}#demo-using-pre-trained-model",
        ),
        Weights(
            "did-mdn-classifier", "DID-MDN rain-density classifier", "derain", "did-mdn", "with-classifier",
            "netG_epoch_9.pth", (Source("gdrive-folder", "1-G86JTvv7o1iTyfB2YZAQTEHDtSlEUKk"),), _DID_MDN_NONE,
            _DID_MDN_PAPER, f"{_DID_MDN_PAGE}#demo-using-pre-trained-model", host="did-mdn-generator",
            prefix="classifier.",
            note="the release's vgg19ca; loaded by name it brings did-mdn-generator along (one network with both)",
        ),
    )
}  # fmt: skip


def is_official(name: object) -> bool:
    return isinstance(name, str) and name in CATALOGUE


def get(name: str) -> Weights:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownWeightsError(f"{name!r} is no official checkpoint; known: {', '.join(CATALOGUE)}") from None


# ---- the cache ---------------------------------------------------------------------------------------------------


def cache_root() -> Path:
    """`$MPRNET_CACHE`, else the per-user cache folder of the platform (~/.cache/mprnet on Linux)."""
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("mprnet"))


def local_path(name: str) -> Path:
    """Where the entry's file lives once fetched, and where to put it by hand: `<cache>/weights/NAME/FILE`."""
    entry = get(name)
    return cache_root() / "weights" / entry.name / entry.file_name


def is_cached(name: str) -> bool:
    return local_path(name).is_file()


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def recorded_sha256(name: str) -> str | None:
    """The sha256 the entry's file was verified with (None before its first verified fetch)."""
    record = _record_path(local_path(name))
    return get(name).sha256 or (record.read_text().strip() if record.is_file() else None)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---- licences ----------------------------------------------------------------------------------------------------


def _accepted_path() -> Path:
    return cache_root() / "accepted-licenses.json"


def accepted_licenses() -> set[str]:
    """Licence ids accepted once in this cache, and those `$MPRNET_ACCEPT_LICENSES` names (comma-separated)."""
    path = _accepted_path()
    stored = set(json.loads(path.read_text())) if path.is_file() else set()
    named = {part.strip() for part in os.environ.get(ACCEPT_VARIABLE, "").split(",") if part.strip()}
    return stored | named


def accept_license(license_id: str) -> None:
    """Record in the cache that the licence `license_id` is accepted."""
    path = _accepted_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(sorted(accepted_licenses() | {license_id})))


def describe_license(entry: Weights) -> str:
    terms = entry.license
    return f"{entry.name} is under the {terms.title}: {terms.summary}. Licence: {terms.url}"


def require_license(entry: Weights, accept: bool = False) -> None:
    """Record the licence as accepted where `accept`; LicenseError where it has never been accepted."""
    if accept:
        accept_license(entry.license.id)
    elif entry.license.id not in accepted_licenses():
        raise LicenseError(
            f"{describe_license(entry)}. Accept it once with `mprnet weights fetch {entry.name} --accept-license` "
            f"(or, in scripts, {ACCEPT_VARIABLE}={entry.license.id})"
        )


# ---- fetching ----------------------------------------------------------------------------------------------------


def fetch(name: str, accept_license: bool = False, progress: bool = True) -> Path:
    """The entry's verified file in the cache, downloaded first if it is not there (and its host's, for a part)."""
    entry = get(name)
    if entry.host:
        fetch(entry.host, accept_license, progress)
    target = local_path(name)
    if target.is_file():
        check_cached(entry, target)
        return target
    require_license(entry, accept_license)
    if progress:
        print(describe_license(entry), file=sys.stderr)
    incoming = _download(entry, target.parent / ".incoming", progress)
    try:
        digest = sha256_of(incoming)
        if entry.sha256 and digest != entry.sha256:
            raise ChecksumError(
                f"{entry.name}: the downloaded {entry.file_name} has sha256 {digest}, not the published "
                f"{entry.sha256}; it was removed"
            )
        verify(entry, incoming)
    except MprnetError as error:
        incoming.unlink(missing_ok=True)
        _remove_derived(entry)
        raise WeightsError(f"{entry.name}: the download was refused and removed: {error}") from None
    os.replace(incoming, target)
    _record_path(target).write_text(digest + "\n")
    return target


def check_cached(entry: Weights, path: Path) -> None:
    """ChecksumError where the file's bytes differ from those published or recorded; a file put there by hand and
    never checked is verified by loading and its sha256 recorded."""
    expected = recorded_sha256(entry.name)
    digest = sha256_of(path)
    if expected is None:
        verify(entry, path)
        _record_path(path).write_text(digest + "\n")
    elif digest != expected:
        raise ChecksumError(
            f"{path}: changed since it was verified (sha256 {digest}, expected {expected}); refused. Delete it and "
            f"run `mprnet weights fetch {entry.name}` again"
        )


def _download(entry: Weights, folder: Path, progress: bool) -> Path:
    """The file downloaded into `folder` (partial transfers kept there for resuming), from the mirror if one is
    set, else from the authors' locations in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / entry.file_name
    mirror = os.environ.get(MIRROR_VARIABLE)
    sources = [_mirror_source(mirror, entry)] if mirror else list(entry.sources)
    failures = []
    for source in sources:
        try:
            _transfer(source, entry, output, progress)
            return output
        except ImportError as error:
            raise WeightsError(
                f"downloading {entry.name} needs the `weights` extra ({_EXTRA_HINT}; missing: {error.name}); or "
                f"{_by_hand(entry)}"
            ) from None
        except Exception as error:  # each library raises its own types for network and server failures
            failures.append(f"{source.describe()}: {_first_line(error)}")
    raise WeightsError(f"{entry.name}: could not download {entry.file_name} ({'; '.join(failures)}). {_by_hand(entry)}")


def _by_hand(entry: Weights) -> str:
    return (
        f"Offline? Put {entry.file_name} by hand at {local_path(entry.name)} (the authors publish it at "
        f"{entry.page}), or set {MIRROR_VARIABLE} to a URL or folder holding {entry.name}/{entry.file_name}"
    )


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _mirror_source(mirror: str, entry: Weights) -> Source:
    if mirror.startswith(("http://", "https://")):
        return Source("url", f"{mirror.rstrip('/')}/{entry.name}/{entry.file_name}")
    return Source("folder", str(Path(mirror).expanduser() / entry.name / entry.file_name))


def _transfer(source: Source, entry: Weights, output: Path, progress: bool) -> None:
    if source.kind == "folder":
        if not Path(source.location).is_file():
            raise FileNotFoundError(f"no file {source.location} in the mirror folder")
        shutil.copyfile(source.location, output)
    elif source.kind == "hf":
        from huggingface_hub import hf_hub_download

        hf_hub_download(source.location, entry.file_name, repo_type=source.repo_type, local_dir=output.parent)
    elif source.kind == "gdrive-folder":
        _transfer(_drive_file_in_folder(source.location, entry.file_name), entry, output, progress)
    else:
        _gdown(source, output, progress)


def _gdown(source: Source, output: Path, progress: bool) -> None:
    """A resumable transfer: gdown keeps a cut one as `FILE<8 characters>.part` beside `output` and continues it
    with a byte range (and Google Drive's confirmation page is its business)."""
    import gdown

    drive = source.kind == "gdrive"
    gdown.download(
        None if drive else source.location,
        str(output),
        id=source.location if drive else None,
        quiet=not progress,
        resume=True,
        use_cookies=drive,
        retries=TRANSFER_RETRIES,
        timeout=TRANSFER_TIMEOUT,
    )


def _drive_file_in_folder(folder_id: str, file_name: str) -> Source:
    import gdown

    listed = gdown.download_folder(id=folder_id, skip_download=True, quiet=True, timeout=TRANSFER_TIMEOUT)
    for item in listed or ():
        if not isinstance(item, str) and Path(item.path).name == file_name:  # skip_download lists, never paths
            return Source("gdrive", item.id)
    raise FileNotFoundError(f"the Google Drive folder {folder_id} holds no {file_name}")


# ---- checking and reading ----------------------------------------------------------------------------------------


def _meta_network(architecture: str, config: dict) -> StateDict:
    """The state dict of a network with `config`, shapes only (on the meta device, no memory)."""
    with torch.device("meta"):
        return build(get_architecture(architecture), config).state_dict()


def verify(entry: Weights, path: Path) -> None:
    """WeightsError unless the file loads as the entry's architecture with its expected hyper-parameters."""
    architecture, expected = entry.expected()
    state_dict = _complete(entry, _tensors(entry, path))
    try:
        found, config = detect(state_dict)
    except ValueError as error:
        raise WeightsError(f"{path} is not the published {entry.title}: {error}") from None
    if found.name != architecture or config != expected:
        described = ", ".join(f"{key}={value!r}" for key, value in config.items())
        wanted = ", ".join(f"{key}={value!r}" for key, value in expected.items())
        raise WeightsError(
            f"{path} holds a {found.title} network ({described}), not the {entry.title} the catalogue lists "
            f"({architecture}: {wanted})"
        )
    with torch.device("meta"):
        check_fit(build(found, config), state_dict, str(path))


def _tensors(entry: Weights, path: Path) -> StateDict:
    """The tensors the file holds, a TensorFlow archive converted first."""
    return read_weights(_converted(entry, path) if entry.member else path)[0]


def _complete(entry: Weights, state_dict: StateDict) -> StateDict:
    """A part's tensors under its prefix, beside shape-only tensors of the rest of its host's network."""
    if not entry.host:
        return state_dict
    architecture, expected = entry.expected()
    host = _meta_network(architecture, expected)
    return {**{k: v for k, v in host.items() if not k.startswith(entry.prefix)}, **_prefixed(entry, state_dict)}


def _prefixed(entry: Weights, state_dict: StateDict) -> StateDict:
    return {entry.prefix + key: value for key, value in state_dict.items()}


def _derived(entry: Weights) -> tuple[Path, Path]:
    """What a fetch makes from an archive, in the entry's cache folder: the converted file and the extracted one."""
    folder = local_path(entry.name).parent
    return folder / f"{entry.name}.safetensors", folder / "extracted"


def _remove_derived(entry: Weights) -> None:
    converted, extracted = _derived(entry)
    converted.unlink(missing_ok=True)
    shutil.rmtree(extracted, ignore_errors=True)


def _converted(entry: Weights, archive: Path) -> Path:
    """The archive's TensorFlow checkpoint converted to `.safetensors` in the entry's cache folder (once)."""
    converted, extracted = _derived(entry)
    if converted.is_file():
        return converted
    assert entry.member is not None  # only archives are converted
    prefix = _extract_checkpoint(archive, entry.member, extracted)
    return convert_tf_checkpoint(prefix, converted)


def _extract_checkpoint(archive: Path, member: str, folder: Path) -> Path:
    """The files of the TensorFlow checkpoint `member` (a prefix, wherever it lies in the archive) extracted into
    `folder`; their prefix there."""
    try:
        with zipfile.ZipFile(archive) as handle:
            names = [name for name in handle.namelist() if f"/{name}".rsplit(".", 1)[0].endswith(f"/{member}")]
            if not any(name.endswith(".index") for name in names):
                raise WeightsError(f"{archive}: holds no TensorFlow checkpoint {member}")
            for name in names:
                handle.extract(name, folder)
    except zipfile.BadZipFile as error:
        raise WeightsError(f"{archive}: not a readable zip archive ({error})") from None
    index = next(name for name in names if name.endswith(".index"))
    return folder / index.removesuffix(".index")


def convert_tf_checkpoint(prefix: Path, destination: Path, overwrite: bool = False) -> Path:
    """SRN's TensorFlow checkpoint `prefix` as `.safetensors` at `destination`, written atomically (by
    mprnet.tf_checkpoint, which refuses an existing `destination` unless `overwrite`)."""
    try:
        from .tf_checkpoint import convert_srn_checkpoint
    except ImportError:
        raise WeightsError(
            "converting SRN's TensorFlow checkpoint needs mprnet.tf_checkpoint, which this installation lacks"
        ) from None
    return convert_srn_checkpoint(prefix, destination, overwrite=overwrite)


def loadable_path(name: str) -> Path:
    """A weights file that `load_model` reads as the whole official network, fetched on first use: the file
    itself, the converted TensorFlow archive, or for a part one `.safetensors` of it and its host."""
    from .checkpoint import load_model, save_weights

    entry = get(name)
    path = fetch(name)
    if entry.member:
        return _converted(entry, path)
    if not entry.host:
        return path
    combined = path.parent / f"{entry.name}.safetensors"
    if not combined.is_file():
        save_weights(load_model(name), combined, task=entry.task, official=entry.name)
    return combined


def official_weights(name: str) -> tuple[StateDict, dict[str, str]]:
    """The tensors of an official checkpoint, fetched on first use (a part together with its host's), and what
    the catalogue says of it as metadata."""
    entry = get(name)
    path = fetch(name, progress=True)
    state_dict = _tensors(entry, path)
    if entry.host:
        host = get(entry.host)
        state_dict = {**_tensors(host, local_path(host.name)), **_prefixed(entry, state_dict)}
    metadata = {
        "task": entry.task,
        "summary": f"{entry.title} (official; {entry.license.title})",
        "official": entry.name,
        "license": entry.license.url,
        "paper": entry.paper,
    }
    return state_dict, metadata
