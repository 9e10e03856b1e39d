"""``eexarray serve`` on the command line, the demo default, and the server in its own process."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import requests

from eexarray.cli import build_parser, main
from eexarray.server import ProceduralImage, procedural_values, serve
from tests.server.helpers import UTM_GRID

PUBLIC = "projects/earthengine-public/assets"


def start_cli(*arguments):
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from eexarray.cli import main; sys.exit(main())", "serve", "--port", "0", *arguments],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = process.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), process.stderr.read()
    return process, url


def stop_cli(process):
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def test_cli_serves_a_root_with_knobs(tmp_path):
    import rasterio
    from affine import Affine

    data = np.arange(12, dtype="uint16").reshape(3, 4)
    with rasterio.open(tmp_path / "tiny.tif", "w", driver="GTiff", width=4, height=3, count=1, dtype="uint16",
                       crs="EPSG:32633", transform=Affine(10, 0, 0, 0, -10, 0)) as dataset:  # fmt: skip
        dataset.write(data, 1)
    process, url = start_cli("--root", str(tmp_path), "--token", "abc", "--latency-ms", "1", "--compute-budget", "11")
    try:
        assert requests.get(f"{url}/v1/{PUBLIC}/tiny", timeout=10).status_code == 401
        headers = {"Authorization": "Bearer abc"}
        response = requests.post(
            f"{url}/v1/{PUBLIC}/tiny:getPixels", json={"fileFormat": "NPY"}, headers=headers, timeout=10
        )
        assert np.array_equal(np.load(io.BytesIO(response.content))["B1"], data)
        # --compute-budget 11: a computePixels of the 4x3 px image (12 px x 1 image) is too heavy.
        load = {
            "functionInvocationValue": {"functionName": "Image.load", "arguments": {"id": {"constantValue": "tiny"}}}
        }
        body = {"expression": {"result": "0", "values": {"0": load}}, "fileFormat": "NPY"}
        refused = requests.post(f"{url}/v1/projects/p/image:computePixels", json=body, headers=headers, timeout=10)
        assert refused.status_code == 400 and refused.json()["error"]["message"] == "User memory limit exceeded."
        body["grid"] = {"dimensions": {"width": 4, "height": 2}}
        computed = requests.post(f"{url}/v1/projects/p/image:computePixels", json=body, headers=headers, timeout=10)
        assert np.array_equal(np.load(io.BytesIO(computed.content))["B1"], data[:2])
    finally:
        stop_cli(process)


def test_cli_without_root_serves_the_demo_catalog():
    process, url = start_cli()
    try:
        listed = requests.get(f"{url}/v1/projects/earthengine-public:listAssets", timeout=60)
        assert listed.status_code == 200
        assert listed.json()["assets"]  # the built-in demo catalog is not empty
    finally:
        stop_cli(process)


def test_cli_rejects_bad_options(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--port", "eighty"])
    assert main(["serve", "--root", os.path.join(os.sep, "no", "such", "dir"), "--port", "0"]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["serve", "--faults", "429=2", "--port", "0"]) == 2


def test_server_in_a_separate_process():
    image = ProceduralImage("test/far", UTM_GRID, dtypes=("int16",))
    with serve(catalog=[image], process=True) as server:
        assert server.in_process
        body = {"fileFormat": "NPY", "grid": {"dimensions": {"width": 16, "height": 8}}}
        response = requests.post(f"{server.url}/v1/{PUBLIC}/test/far:getPixels", json=body, timeout=30)
        truth = procedural_values(0, np.arange(8)[:, None], np.arange(16)[None, :], 0, "int16")
        assert np.array_equal(np.load(io.BytesIO(response.content))["B1"], truth)
        assert server.stats()["requests"] == {"getPixels": 1}
        server.reset_stats()
        assert server.stats()["requests"] == {}
        url = server.url
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url + "/_stats", timeout=5)


def test_stop_frees_the_port_and_closes_keep_alive_connections():
    server = serve(catalog=[])
    session = requests.Session()
    assert session.get(f"{server.url}/_stats", timeout=5).status_code == 200
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{server.url}/_stats", timeout=5)
    with serve(catalog=[], port=server.port) as again:  # the port is free again
        assert again.port == server.port
