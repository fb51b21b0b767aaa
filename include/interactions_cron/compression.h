/*
 * compression.h
 *	  Compressing an export file's bytes as they are written: gzip
 *	  (libdeflate, in members) or zstd (libzstd, streamed).
 */
#ifndef INTERACTIONS_CRON_COMPRESSION_H
#define INTERACTIONS_CRON_COMPRESSION_H

#include "lib/stringinfo.h"

/* How export files are compressed (interactions_cron.compression). */
typedef enum CompressionKind
{
	COMPRESSION_NONE,
	COMPRESSION_GZIP,
	COMPRESSION_ZSTD
} CompressionKind;

/* One file's compression stream. */
typedef struct Compressor Compressor;

/* Receives compressed bytes, to write them. */
typedef void (*CompressedOutput) (void *argument, const char *data, size_t length);

extern int	CompressionLevel(CompressionKind kind, int levelSetting);
extern const char *CompressionFileSuffix(CompressionKind kind);
extern const char *CompressionContentType(CompressionKind kind);
extern Compressor *CompressorStart(CompressionKind kind, int level);
extern void CompressorWrite(Compressor *compressor, const char *data, size_t length, bool finish,
							CompressedOutput output, void *argument);
extern void CompressorEnd(Compressor *compressor);
extern StringInfo DecompressedContent(StringInfo content, const char *name);

#endif
