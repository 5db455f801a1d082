"""Write a :class:`Volume` as a synthetic MR DICOM series: one file per slice, or one multi-frame file.

For tests and the README example (``python -m LoGSAMLib.testing.dicom_series IMAGE DIR``): the
geometry tags are the ones a scanner writes (ImagePositionPatient per slice or frame,
ImageOrientationPatient, PixelSpacing as row\\column spacing); ``missing`` leaves slices out, as a
series with a lost image. The patient is a phantom; the UIDs are generated.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..types import Volume

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def _slice_dataset(volume: Volume, k: int, pixels: np.ndarray, uids: dict[str, str], sop_uid: str):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    direction, spacing = volume.direction, volume.spacing
    position = volume.ijk_to_lps_matrix() @ np.array([0.0, 0.0, float(k), 1.0])
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = MR_IMAGE_STORAGE, sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uids["study"], uids["series"]
    ds.FrameOfReferenceUID = uids["frame_of_reference"]
    ds.Modality, ds.Manufacturer = "MR", "LoGSAM phantom"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Phantom^MNI", "PHANTOM-1", "", "O"
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", ""
    ds.ReferringPhysicianName = ""
    ds.ContentDate, ds.ContentTime = "20260101", "120000"
    ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
    ds.SeriesDescription = "T1 phantom"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions, ds.MRAcquisitionType = "SE", "NONE", "", "2D"
    ds.RepetitionTime, ds.EchoTime, ds.EchoTrainLength = 500.0, 10.0, 1
    ds.ImageOrientationPatient = [round(float(x), 8) for x in (*direction[:, 0], *direction[:, 1])]
    ds.ImagePositionPatient = [round(float(x), 6) for x in position[:3]]
    ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]  # row spacing (j), column spacing (i)
    ds.SliceThickness = float(spacing[2])
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.WindowCenter, ds.WindowWidth = float(pixels.mean()), float(max(1, np.ptp(pixels)))
    ds.PixelData = np.ascontiguousarray(pixels.astype("<i2")).tobytes()
    return ds


def write_mr_series(
    volume: Volume,
    folder: str | os.PathLike,
    multiframe: bool = False,
    missing: Iterable[int] = (),
) -> list[Path]:
    """Write ``volume`` (rounded to int16) as MR DICOM into ``folder``; returns the files written.

    Slice ``k`` of the array is the image at ``origin + direction[:, 2] * spacing[2] * k``.
    ``multiframe`` writes one Legacy Converted Enhanced MR file (frames in slice order).
    """
    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    uids = {"study": generate_uid(), "series": generate_uid(), "frame_of_reference": generate_uid()}
    pixels = np.clip(np.rint(volume.array), -32768, 32767).astype(np.int16)
    skipped = set(missing)
    datasets = [_slice_dataset(volume, k, pixels[k], uids, generate_uid())
                for k in range(pixels.shape[0]) if k not in skipped]
    if multiframe:
        import highdicom as hd

        enhanced = hd.legacy.LegacyConvertedEnhancedMRImage(
            datasets, series_instance_uid=generate_uid(), series_number=2,
            sop_instance_uid=generate_uid(), instance_number=1)
        path = folder / "multiframe.dcm"
        enhanced.save_as(path)
        return [path]
    paths = []
    for ds in datasets:
        path = folder / f"IM{int(ds.InstanceNumber):04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """``python -m LoGSAMLib.testing.dicom_series IMAGE DIR [--multiframe]``"""
    import argparse

    from ..volume import read_volume

    parser = argparse.ArgumentParser(description="Write an image (e.g. a phantom .nii.gz) as an MR DICOM series.")
    parser.add_argument("image")
    parser.add_argument("folder")
    parser.add_argument("--multiframe", action="store_true", help="one enhanced multi-frame file")
    args = parser.parse_args(argv)
    paths = write_mr_series(read_volume(args.image), args.folder, multiframe=args.multiframe)
    print(f"{len(paths)} file(s) in {args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
