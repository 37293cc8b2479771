#!/usr/bin/env python3
"""Refresh the vendored CRI v1 api.proto.

Usage: update.py CRI_API_GIT_DIR TAG

CRI_API_GIT_DIR is a git directory of k8s.io/cri-api (bare is fine); TAG its
tag for the target Kubernetes version, e.g. v0.33.13. The file is copied to
runtime/v1/api.proto with the gogoproto import and options removed: they
only steer Go code generation, and dropping them spares vendoring gogo.proto.
"""

import re
import subprocess
import sys


def main():
    git_dir, tag = sys.argv[1], sys.argv[2]
    text = subprocess.run(
        ["git", "--git-dir", git_dir, "show", f"{tag}:pkg/apis/runtime/v1/api.proto"],
        check=True, capture_output=True, text=True,
    ).stdout
    out = []
    for line in text.splitlines():
        if 'import "github.com/gogo/protobuf/gogoproto/gogo.proto";' in line:
            continue
        if re.match(r"^option \(gogoproto\.", line):
            continue
        out.append(line)
    with open("runtime/v1/api.proto", "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
