"""`mprnet weights` and official checkpoints by name: stand-ins in each release's layout (tiny networks with formula
weights, registered as catalogue entries whose expected configuration is theirs) served by a local HTTP server
through MPRNET_WEIGHTS_MIRROR. Nothing reaches the internet."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mprnet
from mprnet import hub
from mprnet.cli import main
from mprnet.models.registry import create_model
from mprnet.study.experiments import find_networks

from formula import formula_state_dict

TINY = {
    "mprnet-gopro": ("mprnet", json.loads((Path(__file__).parent / "data" / "tiny_config.json").read_text())),
    "mprnet-sidd": ("mprnet", {**json.loads((Path(__file__).parent / "data" / "tiny_config.json").read_text())}),
    "nafnet-sidd-width32": ("nafnet", dict(width=8, enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1])),
    "mimo-unet-gopro": ("mimo-unet", {"num_res": 1}),
    "did-mdn-generator": ("did-mdn", {}),
    "did-mdn-classifier": ("did-mdn", {"classifier_size": 64, "classifier_hidden": 16}),
}


def _official_layout(name: str, state_dict: dict) -> object:
    """What the authors' file holds: MPRNet's DataParallel state dict under "state_dict", NAFNet's under "params",
    MIMO-UNet's under "model", DID-MDN's bare (its classifier's without the "classifier." our network adds)."""
    if name.startswith("mprnet"):
        return {"state_dict": {f"module.{key}": value for key, value in state_dict.items()}, "epoch": 3000}
    if name.startswith("nafnet"):
        return {"params": state_dict}
    if name.startswith("mimo"):
        return {"model": state_dict, "epoch": 3000}
    if name == "did-mdn-classifier":
        return {key.removeprefix("classifier."): value for key, value in state_dict.items() if "classifier." in key}
    return state_dict


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(hub.CACHE_VARIABLE, str(root))
    for variable in (hub.ACCEPT_VARIABLE, hub.MIRROR_VARIABLE):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(hub, "TRANSFER_RETRIES", 0)  # a cut transfer stops the fetch: the next one resumes it
    return root


@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Path:
    """A folder laid out as the cache is (NAME/FILE) with a stand-in of each TINY entry, which replaces the real
    entry in the catalogue (same name, file, licence and sources, the stand-in's configuration expected)."""
    folder = tmp_path / "mirror"
    for name, (architecture, config) in TINY.items():
        entry = hub.CATALOGUE[name]
        monkeypatch.setitem(hub.CATALOGUE, name, dataclasses.replace(entry, preset=None, config=config))
        model = create_model(architecture, **config)
        path = folder / name / entry.file_name
        path.parent.mkdir(parents=True)
        torch.save(_official_layout(name, formula_state_dict(model)), path)
    return folder


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, folder: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.folder, self.requests, self.cuts, self.served = folder, [], 0, 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Files of the server's folder, with byte ranges; while `cuts` is positive, a response sends half the file and
    drops the connection."""

    server: _Server

    def do_GET(self):
        path = self.server.folder / self.path.lstrip("/")
        self.server.requests.append((self.path, self.headers.get("Range")))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if self.server.cuts > 0:
            self.server.cuts -= 1
            body = body[: len(body) // 2]
            self.close_connection = True
        try:
            self.wfile.write(body)
            self.server.served += len(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client closed a response it did not want (gdown reopens with a range)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(mirror, monkeypatch):
    running = _Server(mirror)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(hub.MIRROR_VARIABLE, running.url)
    yield running
    running.shutdown()
    running.server_close()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- the catalogue -----------------------------------------------------------------------------------------------


def test_list_names_every_official_checkpoint_with_its_file_licence_and_paper(cache, capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for name, entry in hub.CATALOGUE.items():
        assert f"\n{name}  " in out and entry.file_name in out and entry.page in out
    assert "model_deblurring.pth" in out and "1QwQUVbk6YVOJViCsOKYNykCsdJSVGRtb" in out
    assert "Academic Public License (MPRNet)" in out and "non-commercial" in out
    assert "https://arxiv.org/abs/2204.04676" in out  # NAFNet's paper
    assert "size not published" in out and "[not fetched]" in out
    assert str(cache / "weights") in out


def test_the_catalogue_expects_the_configurations_of_the_authors_test_options():
    nafnet_gopro = hub.get("nafnet-gopro-width64").expected()[1]
    assert nafnet_gopro["enc_blk_nums"] == [1, 1, 1, 28] and nafnet_gopro["middle_blk_num"] == 1
    assert nafnet_gopro["tlc_train_size"] == 256  # NAFNetLocal in options/test/GoPro
    assert hub.get("nafnet-sidd-width32").expected()[1]["enc_blk_nums"] == [2, 2, 4, 8]
    assert [hub.get(name).expected()[1]["n_feat"] for name in ("mprnet-gopro", "mprnet-sidd", "mprnet-rain13k")] == [
        96,
        80,
        40,
    ]
    assert hub.get("mimo-unet-plus-gopro").expected()[1]["num_res"] == 20
    assert hub.get("mimo-unet-gopro").expected()[1]["num_res"] == 8
    assert hub.get("did-mdn-classifier").expected()[1] == {"classifier_size": 512, "classifier_hidden": 512}


def test_an_unknown_name_is_refused_with_the_known_ones(cache, capsys):
    assert main(["weights", "fetch", "mprnet-imagenet"]) == 2
    assert "mprnet-gopro" in capsys.readouterr().err


# ---- fetching ----------------------------------------------------------------------------------------------------


def test_fetch_shows_the_licence_and_a_progress_bar_checks_by_loading_and_records_the_sha256(cache, server, capsys):
    assert main(["weights", "fetch", "mprnet-gopro", "--accept-license"]) == 0
    captured = capsys.readouterr()
    target = cache / "weights" / "mprnet-gopro" / "model_deblurring.pth"
    assert target.read_bytes() == (server.folder / "mprnet-gopro" / "model_deblurring.pth").read_bytes()
    assert (target.parent / "model_deblurring.pth.sha256").read_text().strip() == _sha256(target)
    assert "Academic Public License" in captured.err and "100%" in captured.err
    assert _sha256(target) in captured.out
    assert not list((target.parent / ".incoming").iterdir())
    main(["weights", "list"])
    assert "mprnet-gopro  MPRNet, GoPro (deblur; mprnet)  [fetched]" in capsys.readouterr().out


def test_a_licence_is_accepted_once_and_a_refusal_says_how(cache, server, capsys, monkeypatch):
    assert main(["weights", "fetch", "mprnet-gopro"]) == 2
    err = capsys.readouterr().err
    assert "Academic Public License" in err and "--accept-license" in err and "MPRNET_ACCEPT_LICENSES=mprnet-apl" in err
    assert server.requests == []  # nothing downloaded before the licence is accepted
    assert main(["weights", "fetch", "mprnet-gopro", "--accept-license"]) == 0
    assert main(["weights", "fetch", "mprnet-sidd"]) == 0  # the same licence: accepted already
    assert main(["weights", "fetch", "nafnet-sidd-width32"]) == 2  # another licence
    monkeypatch.setenv(hub.ACCEPT_VARIABLE, "nafnet-mit")
    assert main(["weights", "fetch", "nafnet-sidd-width32"]) == 0


def test_a_cut_transfer_resumes_where_it_stopped(cache, server, capsys, monkeypatch):
    monkeypatch.setenv(hub.ACCEPT_VARIABLE, "mprnet-apl")
    size = (server.folder / "mprnet-gopro" / "model_deblurring.pth").stat().st_size
    server.cuts = 1
    assert main(["weights", "fetch", "mprnet-gopro"]) == 1
    assert "could not download" in capsys.readouterr().err
    incoming = cache / "weights" / "mprnet-gopro" / ".incoming"
    (partial,) = incoming.glob("*.part")
    kept = partial.stat().st_size
    assert 0 < kept < size
    assert not (cache / "weights" / "mprnet-gopro" / "model_deblurring.pth").exists()
    assert main(["weights", "fetch", "mprnet-gopro"]) == 0
    assert server.requests[-1][1] == f"bytes={kept}-"  # only the rest was asked for
    target = cache / "weights" / "mprnet-gopro" / "model_deblurring.pth"
    assert _sha256(target) == _sha256(server.folder / "mprnet-gopro" / "model_deblurring.pth")
    assert not list(incoming.iterdir())


def test_a_truncated_or_wrong_file_is_refused_and_removed(cache, server, capsys, monkeypatch):
    monkeypatch.setenv(hub.ACCEPT_VARIABLE, "mprnet-apl,mimo-unet-none")
    served = server.folder / "mprnet-gopro" / "model_deblurring.pth"
    served.write_bytes(served.read_bytes()[: served.stat().st_size // 2])
    assert main(["weights", "fetch", "mprnet-gopro"]) == 1
    assert "refused and removed" in capsys.readouterr().err
    folder = cache / "weights" / "mprnet-gopro"
    assert not (folder / "model_deblurring.pth").exists() and not list((folder / ".incoming").iterdir())
    # A whole, readable checkpoint of another network than the catalogue lists is refused too.
    (server.folder / "mprnet-gopro" / "model_deblurring.pth").write_bytes(
        (server.folder / "mimo-unet-gopro" / "MIMO-UNet.pkl").read_bytes()
    )
    assert main(["weights", "fetch", "mprnet-gopro"]) == 1
    assert "holds a MIMO-UNet network" in capsys.readouterr().err
    assert not (folder / "model_deblurring.pth").exists()


def test_a_published_sha256_that_differs_is_refused(cache, server, capsys, monkeypatch):
    monkeypatch.setenv(hub.ACCEPT_VARIABLE, "mprnet-apl")
    entry = hub.CATALOGUE["mprnet-gopro"]
    monkeypatch.setitem(hub.CATALOGUE, "mprnet-gopro", dataclasses.replace(entry, sha256="0" * 64))
    assert main(["weights", "fetch", "mprnet-gopro"]) == 1
    assert "not the published" in capsys.readouterr().err
    assert not (cache / "weights" / "mprnet-gopro" / "model_deblurring.pth").exists()


def test_a_file_that_changes_after_its_fetch_is_refused(cache, server, capsys, monkeypatch):
    monkeypatch.setenv(hub.ACCEPT_VARIABLE, "mprnet-apl")
    target = hub.fetch("mprnet-gopro", progress=False)
    data = bytearray(target.read_bytes())
    data[-100] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(hub.ChecksumError, match="changed since it was verified"):
        mprnet.load_model("mprnet-gopro")
    assert main(["info", "mprnet-gopro", "--size", "64"]) == 1
    assert "mprnet weights fetch mprnet-gopro" in capsys.readouterr().err


def test_offline_the_error_says_where_to_put_the_file(cache, mirror, capsys, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(hub.MIRROR_VARIABLE, f"http://127.0.0.1:{port}")
    monkeypatch.setenv(hub.ACCEPT_VARIABLE, "mprnet-apl")
    assert main(["weights", "fetch", "mprnet-gopro"]) == 1
    err = capsys.readouterr().err
    target = cache / "weights" / "mprnet-gopro" / "model_deblurring.pth"
    assert f"Put model_deblurring.pth by hand at {target}" in err
    # Put there by hand, the file is checked by loading at its first use, and its sha256 recorded.
    target.write_bytes((mirror / "mprnet-gopro" / "model_deblurring.pth").read_bytes())
    assert mprnet.load_model("mprnet-gopro").hparams["n_feat"] == TINY["mprnet-gopro"][1]["n_feat"]
    assert (target.parent / "model_deblurring.pth.sha256").read_text().strip() == _sha256(target)


def test_a_folder_mirror_replaces_the_authors_locations(cache, mirror, capsys, monkeypatch):
    monkeypatch.setenv(hub.MIRROR_VARIABLE, str(mirror))
    monkeypatch.setenv(hub.ACCEPT_VARIABLE, "mimo-unet-none,nafnet-mit")
    assert main(["weights", "fetch", "mimo-unet-gopro", "nafnet-sidd-width32"]) == 0
    assert (cache / "weights" / "mimo-unet-gopro" / "MIMO-UNet.pkl").is_file()
    (mirror / "nafnet-sidd-width32" / "NAFNet-SIDD-width32.pth").rename(mirror / "elsewhere.pth")
    (cache / "weights" / "nafnet-sidd-width32" / "NAFNet-SIDD-width32.pth").unlink()
    assert main(["weights", "fetch", "nafnet-sidd-width32"]) == 1
    assert str(mirror / "nafnet-sidd-width32" / "NAFNet-SIDD-width32.pth") in capsys.readouterr().err


def test_the_authors_locations_are_tried_in_turn_hub_copy_first(cache, tmp_path, monkeypatch):
    import gdown
    import huggingface_hub

    monkeypatch.setenv(hub.ACCEPT_VARIABLE, "nafnet-mit")
    entry = dataclasses.replace(
        hub.CATALOGUE["nafnet-sidd-width64"], preset=None, config=TINY["nafnet-sidd-width32"][1]
    )
    monkeypatch.setitem(hub.CATALOGUE, entry.name, entry)
    calls = []

    def hub_copy(repo_id, filename, repo_type, local_dir):
        calls.append(("hf", repo_id, repo_type))
        raise OSError("the Space is gone")

    def drive(url, output, id, **options):
        calls.append(("gdrive", id, options["resume"]))
        torch.save({"params": formula_state_dict(create_model("nafnet", **entry.config))}, output)
        return output

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub_copy)
    monkeypatch.setattr(gdown, "download", drive)
    hub.fetch(entry.name, progress=False)
    assert calls == [("hf", "chuxiaojie/NAFNet", "space"), ("gdrive", "14Fht1QQJ2gMlk4N1ERCRuElg8JfjrWWR", True)]


# ---- names wherever weights are taken ----------------------------------------------------------------------------


def test_load_model_fetches_on_first_use_then_reads_the_cache(cache, server, monkeypatch):
    monkeypatch.setenv(hub.ACCEPT_VARIABLE, "mprnet-apl")
    model = mprnet.load_model("mprnet-gopro")
    expected = mprnet.load_model(server.folder / "mprnet-gopro" / "model_deblurring.pth").state_dict()
    assert all(torch.equal(model.state_dict()[key], value) for key, value in expected.items())
    assert model.metadata["task"] == "deblur" and "Academic Public License" in model.metadata["summary"]
    requests = len(server.requests)
    mprnet.load_model("mprnet-gopro")
    assert len(server.requests) == requests  # the second use reads the cache


def test_did_mdn_classifier_loads_with_its_generator_as_one_network(cache, server, monkeypatch):
    monkeypatch.setenv(hub.ACCEPT_VARIABLE, "did-mdn-none")
    model = mprnet.load_model("did-mdn-classifier")
    assert model.architecture == "did-mdn" and model.hparams["classifier_size"] == 64
    assert (cache / "weights" / "did-mdn-generator" / "netG_epoch_9.pth").is_file()
    expected = formula_state_dict(create_model("did-mdn", **TINY["did-mdn-classifier"][1]))
    assert torch.equal(model.classifier.dense_classifier.weight, expected["classifier.dense_classifier.weight"])


def test_restore_info_and_the_study_take_official_names(cache, server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(hub.ACCEPT_VARIABLE, "mprnet-apl")
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(photo)
    out = tmp_path / "restored"
    assert main(["restore", str(photo), "--weights", "mprnet-gopro", "-o", str(out), "--device", "cpu"]) == 0
    assert (out / "photo.png").is_file()
    assert main(["info", "mprnet-gopro", "--size", "64"]) == 0
    assert "architecture:  mprnet" in capsys.readouterr().out
    networks = find_networks(Path("mprnet-gopro"))
    assert networks[("MPRNet", "deblur")] == str(cache / "weights" / "mprnet-gopro" / "model_deblurring.pth")


SRN_FIXTURE = Path(__file__).parent / "fixtures" / "srn_tf" / "color" / "SRN-DeblurNet.model-523000"


def test_convert_writes_srns_tensorflow_checkpoint_as_safetensors(tmp_path, capsys):
    pytest.importorskip("mprnet.tf_checkpoint")
    output = tmp_path / "srn.safetensors"
    assert main(["weights", "convert", str(SRN_FIXTURE), "-o", str(output)]) == 0
    assert mprnet.load_model(output).architecture == "srn" and "srn {'channels': 3" in capsys.readouterr().out
    assert main(["weights", "convert", str(SRN_FIXTURE), "-o", str(output)]) == 2  # no --overwrite


def test_srns_archive_is_fetched_converted_and_checked(cache, tmp_path, monkeypatch):
    pytest.importorskip("mprnet.tf_checkpoint")
    import zipfile

    mirror = tmp_path / "srn-mirror"
    (mirror / "srn-color-gopro").mkdir(parents=True)
    with zipfile.ZipFile(mirror / "srn-color-gopro" / "srndeblur_models.zip", "w") as archive:
        for path in SRN_FIXTURE.parent.glob(f"{SRN_FIXTURE.name}.*"):  # as the release names them
            archive.write(path, f"checkpoints/color/deblur.model-523000{path.name.removeprefix(SRN_FIXTURE.name)}")
    config = mprnet.load_model(SRN_FIXTURE.with_name(SRN_FIXTURE.name + ".index")).hparams
    entry = dataclasses.replace(hub.CATALOGUE["srn-color-gopro"], preset=None, config=config)
    monkeypatch.setitem(hub.CATALOGUE, entry.name, entry)
    monkeypatch.setenv(hub.MIRROR_VARIABLE, str(mirror))
    monkeypatch.setenv(hub.ACCEPT_VARIABLE, "srn-none")
    model = mprnet.load_model("srn-color-gopro")
    assert model.architecture == "srn" and model.hparams["channels"] == 3
    assert (cache / "weights" / "srn-color-gopro" / "srn-color-gopro.safetensors").is_file()
