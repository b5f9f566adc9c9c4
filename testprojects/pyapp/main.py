"""The sample app's entry point: prints a greeting built by another module of the app."""

import sys

from pyapp.greeting import greeting

if __name__ == "__main__":
    print(greeting(sys.version_info))
