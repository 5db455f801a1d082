"""Slicer's brain tumor samples, listed under a LoGSAM category of the Sample Data module."""

import os

import slicer

from .common import MODULE_DIR

# Same URLs and checksums as Slicer's SampleData module.
SAMPLE_DATA = (
    ("MRBrainTumor1", "RegLib_C01_1.nrrd", "998cb522173839c78657f4bc0ea907cea09fd04e44601f17c82ea27927937b95"),
    ("MRBrainTumor2", "RegLib_C01_2.nrrd", "1a64f3f422eb3d1c9b093d1a18da354b13bcf307907c66317e2463ee530b7a97"),
)


def registerSampleData() -> None:
    import SampleData

    testingDataUrl = getattr(slicer.util, "TESTING_DATA_URL",
                             "https://github.com/Slicer/SlicerTestingData/releases/download/")
    icon = os.path.join(MODULE_DIR, "Resources", "Icons", "LoGSAM.png")
    for name, fileName, sha256 in SAMPLE_DATA:
        SampleData.SampleDataLogic.registerCustomSampleDataSource(
            category="LoGSAM",
            sampleName=name,
            thumbnailFileName=icon,
            uris=f"{testingDataUrl}SHA256/{sha256}",
            fileNames=fileName,
            nodeNames=name,
            checksums=f"SHA256:{sha256}",
        )
