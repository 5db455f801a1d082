"""Record from an ALSA test device in a fresh process (PortAudio reads the ALSA configuration
once, when sounddevice is imported) and save the audio and the meter values.

python Testing/alsa/probe.py DEVICE|default SECONDS OUT_PREFIX
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from LoGSAMLib.audio import Recorder, list_input_devices


def main() -> None:
    device, seconds, prefix = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    recorder = Recorder(device=None if device == "default" else device, max_seconds=seconds)
    recorder.start()
    time.sleep(seconds / 2)
    snapshot = recorder.snapshot()  # while recording, as live transcription reads it
    reached = recorder.wait(timeout=30)
    meter = {"reached_max": reached, "elapsed": recorder.elapsed, "level": recorder.level,
             "level_db": recorder.level_db, "recording_after_max": recorder.recording}
    audio = recorder.stop()
    meter["recording_after_stop"] = recorder.recording
    meter["devices"] = [d["name"] for d in list_input_devices()]
    np.save(prefix + ".npy", audio)
    np.save(prefix + "_snapshot.npy", snapshot)
    with open(prefix + ".json", "w", encoding="utf-8") as handle:
        json.dump(meter, handle)


if __name__ == "__main__":
    main()
