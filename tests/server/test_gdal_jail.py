"""The root is a jail for GDAL, not only for Python's ``open`` (issue 12, item 8).

A VRT saved as ``.tif`` names any file on the machine or a URL; a sibling ``.msk`` (opened
by GDAL on its own, with any driver) can be such a VRT too. The server opens root files
as GeoTIFF only, ignores sibling files and gives GDAL no network: the VRTs are refused,
the outside file is never read and the URL is never contacted. The last test proves the
planted files are live: plain rasterio (no jail) reads the secret and contacts the URL.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time

import numpy as np
import pytest
import rasterio
import requests
from affine import Affine

from eexarray.server import serve

PUBLIC = "projects/earthengine-public/assets"
SECRET_VALUE = 77
PROFILE = {"driver": "GTiff", "width": 8, "height": 6, "count": 1, "dtype": "uint8", "crs": "EPSG:32633",
           "transform": Affine(30, 0, 300000, 0, -30, 5000000)}  # fmt: skip


def vrt(source: str, mask_flags: bool = False) -> str:
    """A one-band VRT over ``source`` (an absolute path or a /vsicurl/ URL) on the GeoTIFFs' grid."""
    metadata = '<Metadata><MDI key="INTERNAL_MASK_FLAGS_1">2</MDI></Metadata>' if mask_flags else ""
    return (
        f'<VRTDataset rasterXSize="8" rasterYSize="6">{metadata}<SRS>EPSG:32633</SRS>'
        "<GeoTransform>300000, 30, 0, 5000000, 0, -30</GeoTransform>"
        '<VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
        f'<SourceFilename relativeToVRT="0">{source}</SourceFilename><SourceBand>1</SourceBand>'
        "</SimpleSource></VRTRasterBand></VRTDataset>"
    )


class RecordingSocket:
    """A TCP port that records every connection GDAL makes to it (and closes it at once)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.contacts: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def wait_for_contact(self, seconds: float = 10) -> bool:
        """True once a connection is recorded (by the listener's thread, maybe after the client gave up)."""
        deadline = time.monotonic() + seconds
        while not self.contacts and time.monotonic() < deadline:
            time.sleep(0.05)
        return bool(self.contacts)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                try:
                    self.contacts.append(connection.recv(200))
                except OSError:
                    self.contacts.append(b"")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    base = tmp_path_factory.mktemp("jail")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    with rasterio.open(outside / "secret.tif", "w", **PROFILE) as dataset:
        dataset.write(np.full((1, 6, 8), SECRET_VALUE, "uint8"))
    with rasterio.open(root / "plain.tif", "w", **PROFILE) as dataset:
        dataset.write(np.arange(48, dtype="uint8").reshape(1, 6, 8))
    listener = RecordingSocket()
    url = f"/vsicurl/http://127.0.0.1:{listener.port}/secret.tif"
    (root / "to_outside.tif").write_text(vrt(str(outside / "secret.tif")))
    (root / "to_url.tif").write_text(vrt(url))
    # A genuine GeoTIFF whose sibling mask file is a VRT over the URL.
    with rasterio.open(root / "with_mask.tif", "w", **PROFILE) as dataset:
        dataset.write(np.full((1, 6, 8), 5, "uint8"))
    (root / "with_mask.tif.msk").write_text(vrt(url, mask_flags=True))
    return root, outside, listener


@pytest.fixture(scope="module")
def jail_server(planted):
    root, _, _ = planted
    with serve(root) as running:
        yield running


def npy_pixels(response: requests.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.load(io.BytesIO(response.content))["B1"]


@pytest.mark.parametrize("asset", ["to_outside", "to_url"])
def test_a_vrt_saved_as_tif_is_refused_and_its_source_never_read(planted, jail_server, asset):
    root, outside, listener = planted
    url = f"{jail_server.url}/v1/{PUBLIC}/{asset}"
    for response in (
        requests.get(url, timeout=30),
        requests.post(f"{url}:getPixels", json={"fileFormat": "NPY"}, timeout=30),
    ):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["status"] == "FAILED_PRECONDITION"
        assert f"{asset}.tif is not a readable GeoTIFF" in error["message"]
        assert "not recognized as being in a supported file format" in error["message"]
        assert str(root) not in response.text and str(outside) not in response.text  # no absolute paths
    assert listener.contacts == []


def test_a_vrt_is_left_out_of_listings(jail_server):
    listed = requests.get(f"{jail_server.url}/v1/projects/earthengine-public:listAssets", timeout=30)
    names = [asset["name"].rsplit("/", 1)[-1] for asset in listed.json()["assets"]]
    assert names == ["plain", "with_mask"]


def test_a_sibling_mask_file_is_ignored_and_no_url_contacted(planted, jail_server):
    _, _, listener = planted
    response = requests.post(
        f"{jail_server.url}/v1/{PUBLIC}/with_mask:getPixels", json={"fileFormat": "NPY"}, timeout=30
    )
    assert npy_pixels(response).tolist() == [[5] * 8] * 6  # no pixel masked by the planted .msk
    plain = requests.post(f"{jail_server.url}/v1/{PUBLIC}/plain:getPixels", json={"fileFormat": "NPY"}, timeout=30)
    assert npy_pixels(plain).tolist() == np.arange(48).reshape(6, 8).tolist()
    assert listener.contacts == []
    assert not any(name.endswith(".aux.xml") for name in os.listdir(planted[0]))  # nothing written into the root


def test_zz_the_planted_files_are_live_without_the_jail(planted, jail_server):
    """Runs last (the URL contacts it causes must not leak into the tests above)."""
    root, _, listener = planted
    assert listener.contacts == []  # the server made none during this module
    with rasterio.open(root / "to_outside.tif") as dataset:  # any driver: the VRT driver reads the secret
        assert dataset.driver == "VRT" and int(dataset.read(1).max()) == SECRET_VALUE
    with pytest.raises(rasterio.errors.RasterioError), rasterio.open(root / "with_mask.tif") as dataset:
        dataset.read(1, masked=True)  # GDAL opens the sibling .msk on its own, which fetches the URL
    assert listener.wait_for_contact() and listener.contacts[0].split(b" ", 2)[1] == b"/secret.tif"


NETWORK_PATHS = [
    "/vsicurl/http://127.0.0.1:{port}/{name}.tif",
    "/vsicurl_streaming/http://127.0.0.1:{port}/{name}.tif",
    "/vsis3/bucket/{name}.tif",
    "/vsis3_streaming/bucket/{name}.tif",
]


@pytest.mark.parametrize("template", NETWORK_PATHS, ids=lambda template: template.split("/")[1])
def test_gdal_under_the_jail_has_no_network(template):
    """Whatever path reaches GDAL, its network file systems make no connection under the jail."""
    from eexarray.server.geotiff import open_root_file

    listener = RecordingSocket()
    s3_here = {"AWS_S3_ENDPOINT": f"127.0.0.1:{listener.port}", "AWS_HTTPS": "NO", "AWS_NO_SIGN_REQUEST": "YES",
               "AWS_VIRTUAL_HOSTING": "FALSE"}  # fmt: skip
    with rasterio.Env(**s3_here):
        with (
            pytest.raises(rasterio.errors.RasterioError),
            open_root_file(template.format(port=listener.port, name="jailed")),
        ):
            pass
        assert listener.contacts == []
        with (
            pytest.raises(rasterio.errors.RasterioError),
            rasterio.open(template.format(port=listener.port, name="free")),
        ):
            pass  # the same path without the jail: GDAL does connect (the listener hangs up)
    assert listener.wait_for_contact()
