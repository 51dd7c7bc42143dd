#!/bin/sh
# publish.sh DIR: the platform team's releases (platform/v*/) as the
# commits and annotated tags of a bare git repository at DIR, as they sit on
# the team's git server. Author, committer and dates are fixed, so the
# commits are the same wherever this runs: the products' imgbuild.lock
# files name them.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
bare=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="Platform Team" GIT_AUTHOR_EMAIL=platform@example.com
export GIT_COMMITTER_NAME="Platform Team" GIT_COMMITTER_EMAIL=platform@example.com
git init --quiet --bare --initial-branch=main "$bare"
git init --quiet --initial-branch=main "$work"
month=0
for dir in "$here"/platform/v*/; do
  release=$(basename "$dir")
  month=$((month + 1))
  export GIT_AUTHOR_DATE="2026-0$month-01T12:00:00Z" GIT_COMMITTER_DATE="2026-0$month-01T12:00:00Z"
  find "$work" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
  cp -R "$dir." "$work/"
  git -C "$work" add -A
  git -C "$work" -c commit.gpgsign=false commit --quiet -m "platform $release"
  git -C "$work" -c tag.gpgsign=false tag -a -m "platform $release" "$release"
done
git -C "$work" push --quiet "$bare" main --tags
echo "published $(git -C "$work" tag | tr '\n' ' ')to $bare"
