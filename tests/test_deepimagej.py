"""DeepImageJ's own code runs our packages: ``srredsim validate --deepimagej`` (srredsim.export.deepimagej).

The ``jvm`` tests need Java 17, Maven and the DeepImageJ/JDLL source builds (the vendor folder,
``../shared/vendor`` or ``$SRREDSIM_DEEPIMAGEJ_VENDOR``); without them they skip and say what is
missing. The first run builds the driver and fetches the engines from Maven Central (cached under
the srredsim cache folder). The default suite runs the check on a tiny exported run; the shipped
packages (every ``bioimage_model/*.zip``) are checked under ``slow``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import deepimagej_missing
from srredsim.errors import SrredsimError
from srredsim.export import deepimagej as dij
from srredsim.export import deepimagej_build as dib

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "bioimage_model").glob("*.zip"))


missing = deepimagej_missing  # why the DeepImageJ check cannot run here, or None


def vendor_missing() -> str | None:
    try:
        dib.find_vendor()
    except SrredsimError as exc:
        return str(exc)
    return None


needs_deepimagej = pytest.mark.skipif(missing() is not None, reason=str(missing()))
needs_vendor = pytest.mark.skipif(vendor_missing() is not None, reason=str(vendor_missing()))


# ---- fast: no Java ------------------------------------------------------------------------------

def test_missing_vendor_says_what_is_missing(tmp_path, monkeypatch):
    with pytest.raises(SrredsimError) as err:
        dib.find_vendor(tmp_path / "nowhere")
    assert "nowhere: no such folder" in str(err.value) and "--vendor" in str(err.value)
    (tmp_path / "partial" / "maven").mkdir(parents=True)
    monkeypatch.setenv(dib.VENDOR_ENV, str(tmp_path / "partial"))
    with pytest.raises(SrredsimError) as err:
        dib.find_vendor()
    assert "missing DeepImageJ 3.1.0-SNAPSHOT" in str(err.value) and "JDLL 0.6.1" in str(err.value)


def test_cli_without_vendor_exits_2_with_one_line(tmp_path, capsys):
    from srredsim.cli import main

    assert main(["validate", str(tmp_path / "x.zip"), "--deepimagej", "--vendor", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "srredsim validate: error:" in err[0] and "no such folder" in err[0]


def test_maven_coordinates_of_jdll_catalogue_urls():
    url = "https://maven-central.invalid/maven2/org/tensorflow/tensorflow-core-api/0.5.0/tensorflow-core-api-0.5.0-linux-x86_64.jar"
    assert dib.maven_coordinates(url) == ("org.tensorflow", "tensorflow-core-api", "0.5.0", "linux-x86_64",
                                          "tensorflow-core-api-0.5.0-linux-x86_64.jar")
    url = "https://maven-central.invalid/maven2/com/microsoft/onnxruntime/onnxruntime/1.12.1/onnxruntime-1.12.1.jar"
    assert dib.maven_coordinates(url)[1:4] == ("onnxruntime", "1.12.1", None)
    with pytest.raises(SrredsimError):
        dib.maven_coordinates("https://maven.scijava.org/content/groups/public/io/bioimage/x/1/x-1.jar")


@needs_vendor
def test_adapter_patches_change_exactly_the_published_lines(tmp_path):
    from srredsim.export.safezip import safe_extract

    vendor = dib.find_vendor()
    for artifact in dib.ADAPTERS:
        src = vendor / f"maven/io/bioimage/{artifact}/{dib.ADAPTER_VERSION}/{artifact}-{dib.ADAPTER_VERSION}-sources.jar"
        root = safe_extract(src, tmp_path / artifact)
        patches = [p for p in dib.ADAPTER_PATCHES if p.artifact == artifact]
        assert len(patches) == 1
        before = (root / patches[0].path).read_text().split("\n")
        dib.apply_patches(root, patches)
        after = (root / patches[0].path).read_text().split("\n")
        changed = [i + 1 for i, (a, b) in enumerate(zip(before, after)) if a != b]
        assert changed == [patches[0].line] and len(before) == len(after)
        with pytest.raises(SrredsimError, match="not the adapter source"):
            dib.apply_patches(root, patches)  # already patched: the line no longer reads as expected


def test_compare_reports_border_and_interior():
    ref = np.ones((40, 40), np.float32)
    out = ref.copy()
    out[0, 0] += 0.5
    c = dij.compare(out, ref, halo=4)
    assert c["rel"] == pytest.approx(0.5) and c["border_rel"] == pytest.approx(0.5) and c["interior_rel"] == 0


def test_jdll_percentile_rule_takes_the_sorted_value_without_interpolation():
    x = np.arange(10, dtype=np.float32)
    assert dij.jdll_percentile(x, 50) == 5.0 and np.percentile(x, 50) == 4.5
    assert dij.jdll_percentile(x, 100) == 9.0 and dij.jdll_percentile(x, 0) == 0.0
    assert dij.jdll_percentile(x, 99.9) == 9.0 and dij.jdll_percentile(x, 0.1) == 0.0


# ---- jvm: DeepImageJ's code on a tiny exported run ------------------------------------------------

@pytest.fixture(scope="module")
def tiny_package(trained_run, tmp_path_factory) -> Path:
    """The tiny trained SR-REDSIM of conftest (8 filters, depth 2) exported as a package."""
    from srredsim.export.api import export_run

    out = tmp_path_factory.mktemp("dij") / "tiny.bioimageio.zip"
    return export_run(trained_run, "bioimageio", out, test_size=64).outputs["bioimageio"]


@pytest.mark.jvm
@needs_deepimagej
def test_validate_deepimagej_on_a_tiny_package(tiny_package, tmp_path):
    """`srredsim validate PKG --deepimagej`: both engines, the Fiji macro, offline, = srredsim predict."""
    from srredsim.cli import main

    report = tmp_path / "report.json"
    rc = main(["validate", str(tiny_package), "--deepimagej", "--json", str(report)])
    rows = {r["name"]: r for r in json.loads(report.read_text())}
    assert rc == 0, [(r["name"], r["detail"]) for r in rows.values() if r["status"] == "fail"]
    for name in ("dij.build", "dij.engines", "dij.onnx", "dij.tensorflow_saved_model_bundle", "dij.fiji_macro",
                 "agree.core_blocks", "core.onnx", "core.tensorflow_saved_model_bundle"):
        assert rows[name]["status"] == "pass", (name, rows[name]["detail"])
    assert "ONNX Runtime 1.12.1" in rows["dij.onnx"]["detail"]  # JDLL's engine for opset 17
    assert "TensorFlow Java 0.5.0" in rows["dij.tensorflow_saved_model_bundle"]["detail"]
    assert "pixel size 0.04 um" in rows["dij.fiji_macro"]["detail"]
    assert rows["dij.network"]["status"] in ("pass", "warn")
    assert "no name lookup or connection attempted" in rows["dij.network"]["detail"]
    if dib.netns_prefix():
        assert rows["dij.network"]["status"] == "pass" and "empty network namespace" in rows["dij.network"]["detail"]


@pytest.mark.jvm
@needs_deepimagej
def test_engines_hold_the_patched_adapters(tiny_package):
    """The patched adapters are the published sources with one line changed, under the stock jar name."""
    vendor = dib.find_vendor()
    build = dib.build_driver(vendor)
    engines = dib.cache() / "engines"
    for plan_dir in engines.iterdir():
        marker = json.loads((plan_dir / ".srredsim-engine.json").read_text())
        adapter = next(p for p in plan_dir.glob("dl-modelrunner-*.jar"))
        with zipfile.ZipFile(adapter) as zf:
            manifest = zf.read("META-INF/MANIFEST.MF").decode()
        assert "Srredsim-Patched:" in manifest
        assert len(marker["adapter_patches"]) == 1
        stock = build.adapters / adapter.name
        with zipfile.ZipFile(stock) as a, zipfile.ZipFile(adapter) as b:
            assert {n for n in a.namelist() if n.endswith(".class")} == {n for n in b.namelist() if n.endswith(".class")}


@pytest.mark.jvm
@pytest.mark.slow
@needs_deepimagej
def test_nine_frame_package_through_deepimagej_and_the_fiji_macro(tmp_path):
    """A 3x3 package: the macro makes 9 pages channels. Where DeepImageJ differs from srredsim predict,
    the difference must be JDLL's percentile rule alone (srredsim with JDLL's percentiles = DeepImageJ)."""
    import re

    from conftest import tiny_config, write_toy_folder
    from srredsim.export.api import export_run
    from srredsim.train import train

    data = write_toy_folder(tmp_path / "data", n_train=3, n_test=1, size=32, phases=3)
    run = train(data, tmp_path / "run", tiny_config(**{"optics.phases": 3, "model.in_channels": 9}), verbose=0)
    pkg = export_run(run.path, "bioimageio", tmp_path / "nine.bioimageio.zip", test_size=64).outputs["bioimageio"]
    rows = {r.name: r for r in dij.check_package(pkg)}
    assert "plain 9-page stack" in rows["dij.fiji_macro"].detail
    for name in ("dij.onnx", "dij.tensorflow_saved_model_bundle", "dij.fiji_macro"):
        r = rows[name]
        if r.status != "pass":
            m = re.search(r"srredsim with JDLL's percentiles = DeepImageJ to ([0-9.e+-]+)", r.detail)
            assert m and float(m.group(1)) <= dij.TOLERANCE, (name, r.detail)
    assert rows["agree.core_blocks"].status == "pass" and rows["dij.network"].status in ("pass", "warn")


# ---- slow: the shipped packages ---------------------------------------------------------------

@pytest.mark.jvm
@pytest.mark.slow
@needs_deepimagej
@pytest.mark.parametrize("package", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_package_runs_in_deepimagej(package):
    rows = dij.check_package(package)
    failed = [(r.name, r.detail) for r in rows if r.status == "fail"]
    assert not failed, failed
    names = {r.name for r in rows}
    assert {"dij.onnx", "dij.tensorflow_saved_model_bundle", "dij.fiji_macro"} <= names
