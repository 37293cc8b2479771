#!/usr/bin/env python3
"""Generate the strategic merge patch metadata table of the built-in types.

Usage: patchmeta.py API_GIT_DIR APIMACHINERY_GIT_DIR TAG [OUT]

Reads the Go struct tags `patchStrategy` / `patchMergeKey` of k8s.io/api and
k8s.io/apimachinery (as update.py does for jsonfields.txt) and writes OUT
(default: apiserver/src/patch/patchmeta.txt). Strategic merge patch walks an
object from its kind's root type down, so the table also names the type of
every field holding an object, a list of objects or a map of objects, with
Go's inlined (embedded) structs flattened into their parent, as JSON sees
them. Types are named as OpenAPI names them (io.k8s.api.core.v1.PodSpec).
Fields that hold only scalars and have no strategy are left out: without a
strategy a list is replaced and a map merged key by key, which is what the
patch code does for fields it does not know.
"""

import json
import os
import re
import sys

import yaml

from update import API_PACKAGES, FIELD_RE, git, go_files, parse_structs

MACHINERY_PACKAGES = ["pkg/apis/meta/v1"]
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "..", "..", "apiserver", "src", "patch")
TEST_FILE = "pkg/util/strategicpatch/patch_test.go"


def openapi_package(import_path):
    """k8s.io/api/core/v1 -> io.k8s.api.core.v1 (None: not a tabled package)."""
    for module, pkgs in (("k8s.io/api", API_PACKAGES), ("k8s.io/apimachinery", MACHINERY_PACKAGES)):
        for pkg in pkgs:
            if import_path == f"{module}/{pkg}":
                return "io.k8s." + import_path.removeprefix("k8s.io/").replace("/", ".")
    return None


def imports(src):
    """Go import alias -> import path of one file."""
    out = {}
    for block in re.findall(r"^import \((.*?)^\)", src, re.S | re.M):
        for line in block.split("\n"):
            m = re.match(r'\s*(\w+)?\s*"([^"]+)"', line)
            if m:
                out[m.group(1) or m.group(2).rsplit("/", 1)[-1]] = m.group(2)
    for alias, path in re.findall(r'^import (\w+)?\s*"([^"]+)"', src, re.M):
        out[alias or path.rsplit("/", 1)[-1]] = path
    return out


MARKER_RE = re.compile(r"//\s*\+(listType|listMapKey|mapType|structType)=(\S+)")


def markers(src):
    """The list/map/struct type markers (`// +listType=map`...) of one file:
    ({(struct, field decl): {marker: [values]}}, {struct: {marker: [values]}}),
    from the comment lines right above each field and struct."""
    fields, types = {}, {}
    pending, struct = {}, None
    for line in src.split("\n"):
        s = line.strip()
        m = MARKER_RE.match(s)
        if m:
            pending.setdefault(m.group(1), []).append(m.group(2))
            continue
        if s.startswith("//") or not s:
            continue
        tm = re.match(r"^type (\w+) struct", line)
        if tm:
            types[tm.group(1)], struct = pending, tm.group(1)
        elif struct and line.startswith("}"):
            struct = None
        elif struct and FIELD_RE.match(line):
            fields[(struct, FIELD_RE.match(line).group(1))] = pending
        pending = {}
    return fields, types


class Package:
    def __init__(self, name, srcs):
        self.name = name
        self.structs = {}  # Go name -> [(decl, tags, imports)]
        self.named = {}  # Go name -> (underlying Go type, imports) for non-struct types
        self.field_markers = {}  # (Go struct, field decl) -> {marker: [values]}
        self.type_markers = {}  # Go struct -> {marker: [values]}
        for src in srcs:
            imp = imports(src)
            f, t = markers(src)
            self.field_markers.update(f)
            self.type_markers.update(t)
            for sname, fields in parse_structs(src):
                self.structs[sname] = [(d, t, imp) for d, t in fields]
            for tname, under in re.findall(r"^type (\w+) ((?:\[\]|map\[|\*)?[\w.\[\]*]+)\s*(?://.*)?$", src, re.M):
                if tname not in self.structs:
                    self.named[tname] = (under, imp)


def main():
    api_dir, machinery_dir, tag = sys.argv[1:4]
    out_dir = sys.argv[4] if len(sys.argv) > 4 else OUT_DIR
    write_cases(git(machinery_dir, "show", f"{tag}:{TEST_FILE}"), tag, out_dir)
    packages = {}
    kinds = []
    for gitdir, module, pkgs in ((machinery_dir, "k8s.io/apimachinery", MACHINERY_PACKAGES), (api_dir, "k8s.io/api", API_PACKAGES)):
        for pkg in pkgs:
            name = openapi_package(f"{module}/{pkg}")
            packages[name] = Package(name, list(go_files(gitdir, tag, pkg)))
            if module == "k8s.io/api":
                reg = git(gitdir, "show", f"{tag}:{pkg}/register.go")
                group = re.search(r'const GroupName = "([^"]*)"', reg).group(1)
                version = pkg.split("/")[1]
                api_version = f"{group}/{version}" if group else version
                body = re.search(r"func addKnownTypes\(.*?\n\}", reg, re.S)
                for kind in re.findall(r"&(\w+)\{\}", body.group(0) if body else ""):
                    if kind in packages[name].structs and not kind.endswith("List"):
                        kinds.append(f"kind {api_version} {kind} {name}.{kind}")

    def resolve(gotype, pkg, imp):
        """Go type -> ('o'|'l'|'m'|'-', element OpenAPI type or '-')."""
        gotype = gotype.lstrip("*")
        if gotype.startswith("[]"):
            elem = resolve(gotype[2:], pkg, imp)
            # []byte is a base64 string; lists of lists are not patchable.
            return ("-", "-") if gotype == "[]byte" else ("l", elem[1] if elem[0] == "o" else "-")
        if gotype.startswith("map["):
            elem = resolve(gotype[gotype.index("]") + 1 :], pkg, imp)
            return ("m", elem[1] if elem[0] == "o" else "-")
        if "." in gotype:
            alias, bare = gotype.split(".", 1)
            other = openapi_package(imp.get(alias, ""))
            return resolve_named(bare, packages[other]) if other else ("-", "-")
        return resolve_named(gotype, pkg)

    def resolve_named(bare, pkg):
        if bare in pkg.structs:
            return ("o", f"{pkg.name}.{bare}")
        if bare in pkg.named:
            under, imp = pkg.named[bare]
            return resolve(under, pkg, imp)
        return ("-", "-")

    def has_fields(ref):
        """Whether a struct has JSON fields (Time, Quantity... marshal as strings)."""
        pkg_name, bare = ref.rsplit(".", 1)
        return next(fields(packages[pkg_name], bare, True), None) is not None

    def fields(pkg, struct, every=False):
        """Table rows of a struct, embedded structs flattened; every: unfiltered."""
        for decl, tags, imp in pkg.structs[struct]:
            parts = decl.split()
            json_name, *opts = (tags.get("json") or ",inline").split(",")
            if json_name == "-":
                continue
            if "inline" in opts or (json_name == "" and len(parts) == 1):
                shape, ref = resolve(parts[-1], pkg, imp)
                if shape == "o":
                    pkg_name, bare = ref.rsplit(".", 1)
                    yield from fields(packages[pkg_name], bare, every)
                continue
            shape, ref = resolve(parts[-1], pkg, imp)
            if every:
                yield json_name
                continue
            strategy = tags.get("patchStrategy", "-")
            key = tags.get("patchMergeKey", "-")
            marks = pkg.field_markers.get((struct, decl), {})
            # Server-side apply's element relationship: listType for lists,
            # mapType / structType (atomic or granular) for maps and structs.
            relation = (marks.get("listType") or marks.get("mapType") or marks.get("structType") or ["-"])[0]
            map_keys = ",".join(marks.get("listMapKey", [])) or "-"
            if ref != "-" and not has_fields(ref):
                ref = "-"  # custom marshalled (Time, Quantity...) or opaque
                shape = "-" if shape == "o" else shape
            if shape == "-" or (ref == "-" and shape == "m"):
                if strategy == "-" and relation in ("-", "granular"):
                    continue
            elif shape == "l" and ref == "-" and strategy == "-" and relation in ("-", "atomic"):
                continue
            yield f"{json_name} {shape} {ref} {strategy} {key} {relation} {map_keys}"

    lines = [
        f"# Generated by proto/k8s/patchmeta.py from k8s.io/api and k8s.io/apimachinery {tag}; do not edit.",
        "# kind <apiVersion> <Kind> <type> | type <type>",
        "# <json field> <shape: o object, l list, m map, - scalar> <item type or -> <patchStrategy or -> <patchMergeKey or ->",
        "#   <+listType / +mapType / +structType or -> <+listMapKey,... or ->",
        "# type <type> atomic: a struct marked +structType=atomic",
    ]
    lines += sorted(kinds)
    for name, pkg in packages.items():
        for struct in sorted(pkg.structs):
            rows = list(fields(pkg, struct))
            atomic = pkg.type_markers.get(struct, {}).get("structType") == ["atomic"]
            if rows or atomic:
                lines.append(f"type {name}.{struct}" + (" atomic" if atomic else ""))
                lines += rows
    with open(os.path.join(out_dir, "patchmeta.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def write_cases(src, tag, out_dir):
    """Ports upstream's strategicMergePatchRawTestCases to strategic_cases.json.

    Each upstream case checks two patch applications: its two-way patch on
    Original (giving TwoWayResult, else Modified) and, unless the case is
    about conflicts, its three-way patch on Current (giving Result). Both use
    the MergeItem test type, whose tags strategic.rs's tests restate.
    """
    cases = []
    for var in ("customStrategicMergePatchRawTestCases", "strategicMergePatchRawTestCases"):
        body = src[src.index(f"var {var} ") :]
        cases += raw_cases(body[: body.index("\n}\n")], three_way=var.startswith("strategic"))
    with open(os.path.join(out_dir, "strategic_cases.json"), "w") as f:
        f.write(f"// Generated by proto/k8s/patchmeta.py from {TEST_FILE} {tag}; do not edit.\n")
        f.write("[\n" + ",\n".join(json.dumps(c) for c in cases) + "\n]\n")


def raw_cases(body, three_way):
    cases = []
    for chunk in re.split(r"\n\t\{\n\t\tDescription: ", body)[1:]:
        name = json.loads(chunk[: chunk.index("\n")].rstrip(","))
        fields = {k: yaml.safe_load(v) for k, v in re.findall(r"(\w+): \[\]byte\(`(.*?)`\)", chunk, re.S)}
        error = re.search(r'ExpectedError: *"([^"]*)"', chunk)
        runs = [("two-way", "Original", "TwoWay", fields.get("TwoWayResult", fields.get("Modified")))]
        if three_way and "conflict" not in name and "Result" in fields:
            runs.append(("three-way", "Current", "ThreeWay", fields["Result"]))
        for suffix, base, patch, want in runs:
            if patch not in fields:
                continue
            case = {"name": f"{name} ({suffix})", "original": fields.get(base) or {}, "patch": fields[patch] or {}}
            if error:
                case["error"] = error.group(1)
            else:
                case["want"] = want or {}
            cases.append(case)
    return cases


if __name__ == "__main__":
    main()
