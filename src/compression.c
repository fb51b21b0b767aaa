/*
 * compression.c
 *	  Compressing an export file's bytes as they are written: gzip
 *	  (libdeflate) or zstd (libzstd, streamed), in the export's memory
 *	  contexts; and reading both back (zlib, libzstd).
 *
 * libdeflate compresses whole buffers only, so a gzip file is a series of
 * gzip members of GZIP_MEMBER_BYTES of rows each, as RFC 1952 defines a gzip
 * file, which gzip, zlib's gzread, DuckDB and Hadoop's codec read whole
 * (zlib's inflate stops at the end of a member: see Gunzip).  It took 0.55
 * to 0.6 times zlib's CPU at level 1 for files 5 to 10% smaller.
 *
 * The default levels were chosen by measurement on 1,000,000 rows of
 * NDJSON (doc/s3-and-compression.md, "Compression"): gzip at level 1 takes
 * a third to a half of level 6's time for files a fifth to a half larger,
 * and zstd at level 1 compresses better than gzip 6 in a fraction of its
 * time; no zstd level up to 5 compressed those rows better by much.
 */
#include "postgres.h"

#include <libdeflate.h>
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

/*
 * Rows per gzip member: a member costs 18 bytes and starts with an empty
 * window, and libdeflate took a tenth longer with members of 256 kB.
 */
#define GZIP_MEMBER_BYTES (1024 * 1024)

struct Compressor
{
	CompressionKind kind;
	struct libdeflate_compressor *gzip;
	char	   *member;			/* gzip: rows of the member being filled */
	size_t		memberLength;
	bool		memberWritten;	/* gzip: a member was written */
	ZSTD_CCtx  *zstd;
	MemoryContextCallback freeLibraryState; /* frees gzip's or zstd's state with ours */
	char	   *chunk;			/* compressed bytes to hand on */
	size_t		chunkSize;
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
 * FreeLibraryState frees the compressor's state allocated by libdeflate or
 * libzstd when the memory context holding the compressor goes, so that an
 * error mid-file leaks nothing.
 */
static void
FreeLibraryState(void *argument)
{
	Compressor *compressor = argument;

	libdeflate_free_compressor(compressor->gzip);
	compressor->gzip = NULL;
	ZSTD_freeCCtx(compressor->zstd);
	compressor->zstd = NULL;
}

/*
 * StartGzip prepares libdeflate's compressor and a member's buffers.
 */
static void
StartGzip(Compressor *compressor, int level)
{
	compressor->gzip = libdeflate_alloc_compressor(level);
	if (compressor->gzip == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not start gzip compression.")));
	compressor->member = palloc(GZIP_MEMBER_BYTES);
	compressor->chunkSize = libdeflate_gzip_compress_bound(compressor->gzip, GZIP_MEMBER_BYTES);
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
	compressor->chunkSize = COMPRESSED_CHUNK_BYTES;
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
	compressor->freeLibraryState.func = FreeLibraryState;
	compressor->freeLibraryState.arg = compressor;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &compressor->freeLibraryState);
	if (kind == COMPRESSION_GZIP)
		StartGzip(compressor, level);
	else
		StartZstd(compressor, level);
	compressor->chunk = palloc(compressor->chunkSize);
	return compressor;
}

/*
 * WriteGzipMember compresses the rows gathered for a member into one gzip
 * member and hands it on.
 */
static void
WriteGzipMember(Compressor *compressor, CompressedOutput output, void *argument)
{
	size_t		compressedLength;

	compressedLength = libdeflate_gzip_compress(compressor->gzip, compressor->member,
												compressor->memberLength,
												compressor->chunk, compressor->chunkSize);
	/* The chunk holds the bound libdeflate gives for a full member. */
	if (compressedLength == 0)
		elog(ERROR, "gzip compression of %zu bytes did not fit in %zu", compressor->memberLength,
			 compressor->chunkSize);
	output(argument, compressor->chunk, compressedLength);
	compressor->memberLength = 0;
	compressor->memberWritten = true;
}

/*
 * Deflate gathers bytes into gzip members and hands on each member as it
 * fills; finish writes the last one (an empty file is one empty member).
 */
static void
Deflate(Compressor *compressor, const char *data, size_t length, bool finish,
		CompressedOutput output, void *argument)
{
	while (length > 0)
	{
		size_t		taken = Min(length, GZIP_MEMBER_BYTES - compressor->memberLength);

		memcpy(compressor->member + compressor->memberLength, data, taken);
		compressor->memberLength += taken;
		data += taken;
		length -= taken;
		if (compressor->memberLength == GZIP_MEMBER_BYTES)
			WriteGzipMember(compressor, output, argument);
	}
	if (finish && (compressor->memberLength > 0 || !compressor->memberWritten))
		WriteGzipMember(compressor, output, argument);
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
	FreeLibraryState(compressor);
	if (compressor->member != NULL)
		pfree(compressor->member);
	pfree(compressor->chunk);
	/* The reset callback stays registered, and finds nothing left to free. */
}

/*
 * Gunzip returns a gzip file's content decompressed: every member of it, as
 * gzip does.
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
	while (status != Z_STREAM_END || stream.avail_in > 0)
	{
		if (status == Z_STREAM_END && inflateReset(&stream) != Z_OK)
			elog(ERROR, "could not restart gzip decompression");
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
