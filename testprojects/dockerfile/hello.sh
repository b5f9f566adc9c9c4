#!/bin/sh
echo "$(cat /app/GREETING) (version $VERSION)"
