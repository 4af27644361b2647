/*
 * CRC-32 (IEEE 802.3, reflected, as zlib's crc32()): the checksum of AWS
 * event-stream frames and of gyre's trace spool records.  Chains over
 * pieces: crc = gyre_crc32(gyre_crc32(0, a, n), b, m).
 */
#ifndef GYRE_COMMON_CRC32_H
#define GYRE_COMMON_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t gyre_crc32(uint32_t crc, const void *p, size_t n);

#endif
