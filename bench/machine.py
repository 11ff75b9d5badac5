"""What the benchmarks record about the machine they ran on, beside their numbers."""

import os


def load_average():
    """The 1, 5 and 15 minute load averages (Unix), else None."""
    return [round(load, 2) for load in os.getloadavg()] if hasattr(os, "getloadavg") else None


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (Linux), else None."""
    try:
        with open("/proc/cpuinfo") as lines:
            for line in lines:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
