# Turns the console's files into C arrays, so that the CA binary serves them without any file on disk.
# Usage: cmake "-DIN=a.html;b.js" -DOUT=assets.c -P embed.cmake
# Each file F becomes `const unsigned char ca_console_F[]` (NUL-terminated) and `const size_t ca_console_F_len`.
set(text "/* Generated from ca/console/ by embed.cmake at build time: do not edit. */\n#include <stddef.h>\n")
foreach(f IN LISTS IN)
  get_filename_component(name "${f}" NAME)
  string(MAKE_C_IDENTIFIER "ca_console_${name}" id)
  file(READ "${f}" hex HEX)
  string(LENGTH "${hex}" digits)
  math(EXPR len "${digits} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND text "const unsigned char ${id}[] = {${bytes}0x00};\nconst size_t ${id}_len = ${len};\n")
endforeach()
file(WRITE "${OUT}" "${text}")
