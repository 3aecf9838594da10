/*
 * A docker credential helper for the Wine tests, standing in for Docker
 * Desktop's docker-credential-desktop.exe: `get` reads a server URL on
 * standard input and answers the credentials held in the environment
 * variables PT_HELPER_USER and PT_HELPER_SECRET as docker's helper
 * protocol says, `{"ServerURL":…,"Username":…,"Secret":…}`; without them,
 * "credentials not found in native keychain" and exit 1, as the real
 * helpers do. Test-only, built with x86_64-w64-mingw32-gcc, never shipped.
 */
#include <windows.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    char server[512], user[256], secret[256];
    if (argc != 2 || strcmp(argv[1], "get") != 0) {
        fputs("usage: docker-credential-desktop get\n", stderr);
        return 2;
    }
    size_t n = fread(server, 1, sizeof server - 1, stdin);
    server[n] = 0;
    server[strcspn(server, "\r\n\"\\")] = 0;
    DWORD u = GetEnvironmentVariableA("PT_HELPER_USER", user, sizeof user);
    DWORD s = GetEnvironmentVariableA("PT_HELPER_SECRET", secret, sizeof secret);
    if (u == 0 || u >= sizeof user || s == 0 || s >= sizeof secret) {
        puts("credentials not found in native keychain");
        return 1;
    }
    printf("{\"ServerURL\":\"%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}\n",
           server, user, secret);
    return 0;
}
