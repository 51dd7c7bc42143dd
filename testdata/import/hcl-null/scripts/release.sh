#!/bin/sh
set -e
echo "$RELEASE" > "$OUT/release-primary"
test -n "$TOKEN"
