/*
 * The floor under sticky routing, measured inside PostgreSQL's executor: a function
 * that does what hashtext() does (hash the text) and then one read of a random cache
 * line in a region of the sticky cache's size, chosen by that hash. Any sticky router
 * must at least find the user's entry in a table of its users, so with a table of this
 * size no routing call of a remembered user can be cheaper than this one, however it is
 * written (bench/scale.sh prints it beside ab_route_user).
 *
 * bench_read_floor(user_id text, region_mb integer) RETURNS integer
 *
 * The region is this backend's own MAP_SHARED | MAP_ANONYMOUS mapping (the way
 * PostgreSQL maps its shared memory, 4 kB pages), made and touched in full at the
 * first call, as the bench's untimed warm-up statement maps the sticky cache.
 * Built by bench/scale.sh into its temporary directory; not part of the extension.
 */
#include "postgres.h"

#include <sys/mman.h>

#include "common/hashfn.h"
#include "fmgr.h"
#include "utils/builtins.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(bench_read_floor);

static volatile char *region = NULL;
static uint64 region_lines = 0;

#define LINE_BYTES 64

static void
map_region(int32 megabytes)
{
	Size		bytes;
	void	   *mapping;

	if (megabytes <= 0 || megabytes > 65536)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("region_mb must be between 1 and 65536, not %d", megabytes)));
	bytes = (Size) megabytes << 20;
	mapping = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mapping == MAP_FAILED)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not map %d MB for bench_read_floor: %m", megabytes)));
	memset(mapping, 1, bytes);
	region = mapping;
	region_lines = bytes / LINE_BYTES;
}

Datum
bench_read_floor(PG_FUNCTION_ARGS)
{
	text	   *user_id = PG_GETARG_TEXT_PP(0);
	uint32		hash = hash_bytes((unsigned char *) VARDATA_ANY(user_id), VARSIZE_ANY_EXHDR(user_id));
	uint64		mixed;
	uint64		line;

	if (region == NULL)
		map_region(PG_GETARG_INT32(1));
	/* The 32-bit hash spread over the region's lines by a multiplication, as the cache
	 * maps a hash to a set. */
	mixed = (uint64) hash * UINT64CONST(0x9E3779B97F4A7C15);
	line = (uint64) (((unsigned __int128) mixed * region_lines) >> 64);
	PG_RETURN_INT32((int32) (hash ^ (uint32) region[line * LINE_BYTES]));
}
