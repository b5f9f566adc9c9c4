"""A module of its own, so the PEX holds more than its entry point."""


def greeting(version) -> str:
    return f"hello from pyapp on Python {version[0]}.{version[1]}"
