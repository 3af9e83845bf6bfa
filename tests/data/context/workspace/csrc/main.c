#include "checksum.h"

int verify(const uint8_t *data, int length, uint32_t expected) {
    return checksum_buffer(data, length) == expected;
}
