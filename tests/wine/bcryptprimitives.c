/*
 * A stand-in for Windows' bcryptprimitives.dll, for running pulltar's
 * Windows build under Wine 8, which lacks that DLL. Rust's standard
 * library (1.78 and later) imports `ProcessPrng` from it to seed its hash
 * maps; without the DLL the exe stops before `main` (status c0000135).
 * Windows 10 and later have the real DLL, so this is never shipped: the
 * tests build it with `x86_64-w64-mingw32-gcc -shared` and put it beside
 * the exe under test.
 *
 * `ProcessPrng` fills the buffer from advapi32's `SystemFunction036`
 * (RtlGenRandom), which Wine has. It takes at most ULONG bytes a call, so
 * a larger request is served in bounded chunks.
 */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    const SIZE_T max_chunk = 1u << 30;
    while (len > 0) {
        ULONG chunk = (ULONG)(len < max_chunk ? len : max_chunk);
        if (!RtlGenRandom(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
