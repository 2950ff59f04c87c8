#!/bin/sh
# make release [RELEASE=vX.Y.Z]: check HEAD, tag it, and build its binaries
# into bin/ with that version (docs/OPERATIONS.md, Releases).
#
# The tag is the next minor version after the newest v0.N.0 tag (v0.1.0 for
# the first) unless RELEASE names one. Checks before tagging: a clean
# worktree, HEAD not released yet, gofmt and go vet, the log-level tests of
# fsm, and the rolling-upgrade test from the previous release (or from
# scripts/upgrade-base) to this commit. The tag is annotated with the build's
# log level. If the build fails after tagging, the tag is deleted again.
set -eu
GO=${GO:-go}
cd "$(git rev-parse --show-toplevel)"

die() { echo "release: $*" >&2; exit 1; }

[ -z "$(git status --porcelain)" ] || die "the worktree has uncommitted changes: commit or stash them first"
released=$(git tag --points-at HEAD --list 'v*')
[ -z "$released" ] || die "HEAD is already released as $released"

if [ -z "${RELEASE:-}" ]; then
	last=$(git tag --list 'v0.*.0' --sort=-v:refname | head -n 1)
	if [ -z "$last" ]; then
		RELEASE=v0.1.0
	else
		minor=$(echo "$last" | sed -n 's/^v0\.\([0-9][0-9]*\)\.0$/\1/p')
		[ -n "$minor" ] || die "cannot read the minor version of $last: give RELEASE=vX.Y.Z"
		RELEASE="v0.$((minor + 1)).0"
	fi
fi
echo "$RELEASE" | grep -Eq '^v[0-9]+\.[0-9]+\.[0-9]+$' || die "RELEASE=$RELEASE is not vMAJOR.MINOR.PATCH"
if git rev-parse -q --verify "refs/tags/$RELEASE" >/dev/null; then
	die "tag $RELEASE exists already"
fi
level=$(sed -n 's/^const LogLevel = \([0-9][0-9]*\)$/\1/p' fsm/version.go)
[ -n "$level" ] || die "cannot read LogLevel from fsm/version.go"

echo "release: checking $(git rev-parse --short HEAD) for $RELEASE (log level $level)"
unformatted=$(gofmt -l .)
[ -z "$unformatted" ] || die "gofmt needed: $unformatted"
$GO vet ./...
$GO test -count=1 -run 'TestLevels_|TestEntryLevel_' ./fsm/
$GO test -count=1 -timeout 5m -run 'TestUpgrade_' ./e2e/

git tag -a "$RELEASE" -m "raftkms $RELEASE (log level $level)"
if ! make build VERSION="$RELEASE" GO="$GO"; then
	git tag -d "$RELEASE" >/dev/null
	die "build failed; tag $RELEASE deleted"
fi
echo "release: tagged $RELEASE on $(git rev-parse --short HEAD); $(bin/kmsd --version)"
echo "release: publish the tag with: git push origin $RELEASE"
