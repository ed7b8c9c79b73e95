// libFuzzer's driver entry point (compiler-rt, LLVM 12 and later). SwiftPM links an executable's entry point as
// `<module>_main`, so each fuzz target defines that and hands control to libFuzzer from it.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
