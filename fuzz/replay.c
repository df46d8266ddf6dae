/* replay: runs a fuzz target's LLVMFuzzerTestOneInput once on each file named on the command line,
 * so the seed corpora under fuzz/corpus/ run as regression tests in every build (make test, and
 * under ASan+UBSan in make check) without libFuzzer. Each input gets an allocation of its exact
 * size, as libFuzzer gives it, so ASan sees a read past its end. Prints "N inputs" and exits 0, or
 * 1 when a file cannot be read (a target's own failure aborts). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (1u << 20)

int
main(int argc, char **argv)
{
    static uint8_t buf[INPUT_MAX];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            fprintf(stderr, "replay: cannot open %s\n", argv[i]);
            return 1;
        }
        size_t len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        uint8_t *input = malloc(len > 0 ? len : 1);
        if (input == NULL) {
            fprintf(stderr, "replay: out of memory\n");
            return 1;
        }
        memcpy(input, buf, len);
        LLVMFuzzerTestOneInput(input, len);
        free(input);
        n++;
    }
    printf("%d inputs\n", n);
    return 0;
}
