#!/usr/bin/env python3
"""Writes a C++ source that defines `std::string_view NAMESPACE::FUNCTION() noexcept` returning a file's bytes.

Used at build time to put the dashboard page into the binary: embed_file.py INPUT OUTPUT NAMESPACE FUNCTION HEADER
"""
import sys

src, dst, namespace, function, header = sys.argv[1:6]
data = open(src, "rb").read()
rows = []
for i in range(0, len(data), 24):
    rows.append("".join(f"\\x{b:02x}" for b in data[i:i + 24]))
body = "\n".join(f'    "{r}"' for r in rows) or '    ""'
with open(dst, "w") as out:
    out.write(f'// Generated from {src.split("/")[-1]} by embed_file.py; do not edit.\n')
    out.write(f'#include "{header}"\n\n')
    out.write(f"namespace {namespace} {{\n\n")
    out.write("namespace {\n")
    out.write(f"constexpr char kBytes[] =\n{body};\n")
    out.write("}  // namespace\n\n")
    out.write(f"std::string_view {function}() noexcept {{ return std::string_view(kBytes, sizeof kBytes - 1); }}\n\n")
    out.write(f"}}  // namespace {namespace}\n")
