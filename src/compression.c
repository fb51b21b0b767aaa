/*
 * compression.c
 *	  Compressing an export file's bytes as they are written: gzip (zlib) or
 *	  zstd (libzstd), streamed, in the export's memory contexts.
 *
 * The default levels were chosen by measurement on 1,000,000 rows of
 * NDJSON (doc/s3-and-compression.md, "Compression"): gzip at level 1 takes
 * about half the time of zlib's default 6 for files a quarter larger, and
 * zstd at level 1 takes a tenth of gzip 6's time for files a tenth larger;
 * no zstd level up to 5 compressed those rows better than level 1 by much.
 */
#include "postgres.h"

#include <zlib.h>
#include <zstd.h>

#include "miscadmin.h"
#include "utils/memutils.h"

#include "interactions_cron/compression.h"

/* The chosen default levels (interactions_cron.compression_level = 0). */
#define GZIP_DEFAULT_LEVEL 1
#define ZSTD_DEFAULT_LEVEL 1

#define GZIP_MAX_LEVEL 9
#define ZSTD_MAX_LEVEL 19

/* Compressed bytes are handed on a chunk at a time. */
#define COMPRESSED_CHUNK_BYTES (256 * 1024)

struct Compressor
{
	CompressionKind kind;
	z_stream   *gzip;
	ZSTD_CCtx  *zstd;
	MemoryContextCallback freeZstd; /* frees zstd's context with ours */
	char	   *chunk;
};

/*
 * CompressionLevel returns the level to compress with: the setting, or the
 * kind's chosen default for 0.  A level the kind does not have is an error.
 */
int
CompressionLevel(CompressionKind kind, int levelSetting)
{
	int			maximum = kind == COMPRESSION_GZIP ? GZIP_MAX_LEVEL : ZSTD_MAX_LEVEL;

	if (kind == COMPRESSION_NONE)
		return 0;
	if (levelSetting == 0)
		return kind == COMPRESSION_GZIP ? GZIP_DEFAULT_LEVEL : ZSTD_DEFAULT_LEVEL;
	if (levelSetting > maximum)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("interactions_cron.compression_level %d is out of range for %s",
						levelSetting, kind == COMPRESSION_GZIP ? "gzip" : "zstd"),
				 errdetail("Nothing was exported."),
				 errhint("Use 1 to %d, or 0 for the default level (%d).", maximum,
						 kind == COMPRESSION_GZIP ? GZIP_DEFAULT_LEVEL : ZSTD_DEFAULT_LEVEL)));
	return levelSetting;
}

/*
 * CompressionFileSuffix returns what a file name gets after ".json".
 */
const char *
CompressionFileSuffix(CompressionKind kind)
{
	return kind == COMPRESSION_GZIP ? ".gz" : kind == COMPRESSION_ZSTD ? ".zst" : "";
}

/*
 * CompressionContentType returns the media type of an uploaded file.
 */
const char *
CompressionContentType(CompressionKind kind)
{
	return kind == COMPRESSION_GZIP ? "application/gzip"
		: kind == COMPRESSION_ZSTD ? "application/zstd" : "application/x-ndjson";
}

/*
 * GzipAllocate lets zlib allocate in the current memory context, so that an
 * error mid-file leaks nothing.
 */
static voidpf
GzipAllocate(voidpf opaque, uInt items, uInt size)
{
	return MemoryContextAllocExtended((MemoryContext) opaque, (Size) items * size, MCXT_ALLOC_HUGE);
}

/*
 * GzipFree returns zlib's memory to its context.
 */
static void
GzipFree(voidpf opaque, voidpf address)
{
	pfree(address);
}

/*
 * FreeZstd frees zstd's context (allocated by libzstd) when the memory
 * context holding the compressor goes, so that an error mid-file leaks
 * nothing.
 */
static void
FreeZstd(void *argument)
{
	Compressor *compressor = argument;

	ZSTD_freeCCtx(compressor->zstd);
	compressor->zstd = NULL;
}

/*
 * StartGzip prepares a deflate stream with a gzip header and trailer.
 */
static void
StartGzip(Compressor *compressor, int level)
{
	compressor->gzip = palloc0(sizeof(z_stream));
	compressor->gzip->zalloc = GzipAllocate;
	compressor->gzip->zfree = GzipFree;
	compressor->gzip->opaque = CurrentMemoryContext;
	if (deflateInit2(compressor->gzip, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		elog(ERROR, "could not start gzip compression: %s",
			 compressor->gzip->msg ? compressor->gzip->msg : "");
}

/*
 * StartZstd prepares a zstd frame with a content checksum, so that a reader
 * detects a damaged file.
 */
static void
StartZstd(Compressor *compressor, int level)
{
	size_t		status;

	compressor->zstd = ZSTD_createCCtx();
	if (compressor->zstd == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not start zstd compression.")));
	compressor->freeZstd.func = FreeZstd;
	compressor->freeZstd.arg = compressor;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &compressor->freeZstd);
	status = ZSTD_CCtx_setParameter(compressor->zstd, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(status))
		status = ZSTD_CCtx_setParameter(compressor->zstd, ZSTD_c_checksumFlag, 1);
	if (ZSTD_isError(status))
		elog(ERROR, "could not start zstd compression: %s", ZSTD_getErrorName(status));
}

/*
 * CompressorStart starts compressing a file at level, or returns NULL for
 * COMPRESSION_NONE.  It lives in the current memory context.
 */
Compressor *
CompressorStart(CompressionKind kind, int level)
{
	Compressor *compressor;

	if (kind == COMPRESSION_NONE)
		return NULL;
	compressor = palloc0(sizeof(Compressor));
	compressor->kind = kind;
	compressor->chunk = palloc(COMPRESSED_CHUNK_BYTES);
	if (kind == COMPRESSION_GZIP)
		StartGzip(compressor, level);
	else
		StartZstd(compressor, level);
	return compressor;
}

/*
 * Deflate feeds bytes to gzip and hands on whatever it produces; finish
 * also ends the stream (gzip's trailer).
 */
static void
Deflate(Compressor *compressor, const char *data, size_t length, bool finish,
		CompressedOutput output, void *argument)
{
	z_stream   *stream = compressor->gzip;
	int			status;

	stream->next_in = (Bytef *) data;
	stream->avail_in = length;
	do
	{
		stream->next_out = (Bytef *) compressor->chunk;
		stream->avail_out = COMPRESSED_CHUNK_BYTES;
		status = deflate(stream, finish ? Z_FINISH : Z_NO_FLUSH);
		if (status == Z_STREAM_ERROR)
			elog(ERROR, "gzip compression failed");
		output(argument, compressor->chunk, COMPRESSED_CHUNK_BYTES - stream->avail_out);
	} while (stream->avail_out == 0 || (finish && status != Z_STREAM_END));
}

/*
 * CompressZstd feeds bytes to zstd and hands on whatever it produces;
 * finish also ends the frame (its checksum).
 */
static void
CompressZstd(Compressor *compressor, const char *data, size_t length, bool finish,
			 CompressedOutput output, void *argument)
{
	ZSTD_inBuffer input = {data, length, 0};
	size_t		remaining;

	do
	{
		ZSTD_outBuffer chunk = {compressor->chunk, COMPRESSED_CHUNK_BYTES, 0};

		remaining = ZSTD_compressStream2(compressor->zstd, &chunk, &input,
										 finish ? ZSTD_e_end : ZSTD_e_continue);
		if (ZSTD_isError(remaining))
			elog(ERROR, "zstd compression failed: %s", ZSTD_getErrorName(remaining));
		output(argument, compressor->chunk, chunk.pos);
	} while (input.pos < input.size || (finish && remaining != 0));
}

/*
 * CompressorWrite compresses bytes and hands the result to output; with
 * finish, it ends the stream.
 */
void
CompressorWrite(Compressor *compressor, const char *data, size_t length, bool finish,
				CompressedOutput output, void *argument)
{
	if (compressor->kind == COMPRESSION_GZIP)
		Deflate(compressor, data, length, finish, output, argument);
	else
		CompressZstd(compressor, data, length, finish, output, argument);
}

/*
 * CompressorEnd frees a finished compressor.
 */
void
CompressorEnd(Compressor *compressor)
{
	if (compressor->gzip != NULL)
		deflateEnd(compressor->gzip);
	if (compressor->zstd != NULL)
		FreeZstd(compressor);
	pfree(compressor->chunk);
	/* The reset callback stays registered, and finds nothing left to free. */
}

/*
 * Gunzip returns a gzip file's content decompressed.
 */
static StringInfo
Gunzip(StringInfo content, const char *name)
{
	StringInfo	plain = makeStringInfo();
	char	   *chunk = palloc(COMPRESSED_CHUNK_BYTES);
	z_stream	stream;
	int			status = Z_OK;

	memset(&stream, 0, sizeof(stream));
	stream.zalloc = GzipAllocate;
	stream.zfree = GzipFree;
	stream.opaque = CurrentMemoryContext;
	if (inflateInit2(&stream, 15 + 16) != Z_OK)
		elog(ERROR, "could not start gzip decompression: %s", stream.msg ? stream.msg : "");
	stream.next_in = (Bytef *) content->data;
	stream.avail_in = content->len;
	while (status != Z_STREAM_END)
	{
		stream.next_out = (Bytef *) chunk;
		stream.avail_out = COMPRESSED_CHUNK_BYTES;
		status = inflate(&stream, Z_NO_FLUSH);
		if (status != Z_OK && status != Z_STREAM_END)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("could not decompress export file \"%s\": %s", name,
							stream.msg ? stream.msg : "truncated gzip data")));
		appendBinaryStringInfo(plain, chunk, COMPRESSED_CHUNK_BYTES - stream.avail_out);
		CHECK_FOR_INTERRUPTS();
	}
	inflateEnd(&stream);
	return plain;
}

/*
 * FreeZstdDecompression frees zstd's decompression context (allocated by
 * libzstd) when the memory context that started it goes, so that an error
 * mid-file leaks nothing.
 */
static void
FreeZstdDecompression(void *argument)
{
	ZSTD_freeDCtx((ZSTD_DCtx *) argument);
}

/*
 * Unzstd returns a zstd file's content decompressed, its checksum checked.
 */
static StringInfo
Unzstd(StringInfo content, const char *name)
{
	StringInfo	plain = makeStringInfo();
	char	   *chunk = palloc(COMPRESSED_CHUNK_BYTES);
	ZSTD_DCtx  *context = ZSTD_createDCtx();
	MemoryContextCallback *freeContext = palloc0(sizeof(MemoryContextCallback));
	ZSTD_inBuffer input = {content->data, content->len, 0};
	size_t		remaining = 1;

	if (context == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not start zstd decompression.")));
	freeContext->func = FreeZstdDecompression;
	freeContext->arg = context;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, freeContext);
	while (input.pos < input.size)
	{
		ZSTD_outBuffer output = {chunk, COMPRESSED_CHUNK_BYTES, 0};

		remaining = ZSTD_decompressStream(context, &output, &input);
		if (ZSTD_isError(remaining))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("could not decompress export file \"%s\": %s", name,
							ZSTD_getErrorName(remaining))));
		appendBinaryStringInfo(plain, chunk, output.pos);
		CHECK_FOR_INTERRUPTS();
	}
	if (remaining != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decompress export file \"%s\": truncated zstd data", name)));
	return plain;
}

/*
 * DecompressedContent returns a file's content decompressed when it is gzip
 * or zstd (by their magic bytes), else as it is.
 */
StringInfo
DecompressedContent(StringInfo content, const char *name)
{
	const unsigned char *bytes = (const unsigned char *) content->data;

	if (content->len >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b)
		return Gunzip(content, name);
	if (content->len >= 4 && bytes[0] == 0x28 && bytes[1] == 0xb5 && bytes[2] == 0x2f && bytes[3] == 0xfd)
		return Unzstd(content, name);
	return content;
}
