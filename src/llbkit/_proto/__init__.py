"""Generated protobuf and gRPC code for BuildKit's wire types. Private: never re-exported.

Regenerate with ``build-support/gen-protos.sh`` after editing a ``.proto`` file here.
"""
