/*
 * holdfile FILE: holds FILE open for reading while letting no one delete,
 * rename over or write it (FILE_SHARE_READ only, no FILE_SHARE_DELETE),
 * as a virus scanner, an indexer or a viewer does on Windows, until a line
 * or the end of input arrives on standard input. Prints "held" once the
 * file is open. The Wine tests run it beside pulltar's exe to check that
 * replacing an output another process holds is retried briefly, then
 * fails with a clear error. Test-only: built with
 * `x86_64-w64-mingw32-gcc -municode`, never shipped.
 */
#include <windows.h>
#include <stdio.h>

int wmain(int argc, wchar_t **argv)
{
    if (argc != 2) {
        fputs("usage: holdfile FILE\n", stderr);
        return 2;
    }
    HANDLE h = CreateFileW(argv[1], GENERIC_READ, FILE_SHARE_READ, NULL,
                           OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "holdfile: cannot open the file: error %lu\n",
                GetLastError());
        return 1;
    }
    puts("held");
    fflush(stdout);
    char line[64];
    fgets(line, sizeof line, stdin);
    CloseHandle(h);
    return 0;
}
