"""A pure-Python entry point: the same PEX serves every platform."""

import platform

if __name__ == "__main__":
    print(f"pure Python on {platform.machine()}")
