/*
 * test/fuzz/shim.c
 *
 * Stand-ins for the backend symbols the condition core links against, so
 * that it runs in a plain process (see shim.h): memory contexts that free
 * all their chunks at once, ereport() that longjmps to shim_try(), the
 * StringInfo functions, psprintf/pstrdup, UTF-8 character lengths and
 * pg_qsort.  Written for this harness; behaviour follows the server's where
 * the core can tell (MaxAllocSize, StringInfo growth, error levels).
 */
#include "postgres.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/memutils.h"

#include "shim.h"

/* The core's calls go to the real libc functions, not libpgport's */
#undef vsnprintf
#undef snprintf
#undef fprintf
#undef qsort

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SHIM_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SHIM_ASAN 1
#endif

#ifdef SHIM_ASAN
#include <sanitizer/asan_interface.h>
/* A chunk header is poisoned except while the shim reads or writes it */
#define OPEN_HEADER(c)	ASAN_UNPOISON_MEMORY_REGION((c), sizeof(ShimChunk))
#define CLOSE_HEADER(c) ASAN_POISON_MEMORY_REGION((c), sizeof(ShimChunk))
#else
#define OPEN_HEADER(c)	((void) 0)
#define CLOSE_HEADER(c) ((void) 0)
#endif

#define CHUNK_MAGIC		UINT64CONST(0x6c6f79616c747921)
#define CONTEXT_MAGIC	UINT64CONST(0x636f6e7465787421)

/*
 * The header in front of every chunk: the links of its context's circular
 * list.  48 bytes keep the chunk itself 16-byte aligned, as malloc's is.
 */
typedef struct ShimChunk
{
	uint64		magic;
	struct ShimContext *cxt;
	struct ShimChunk *prev;
	struct ShimChunk *next;
	Size		size;
	Size		pad;
} ShimChunk;

StaticAssertDecl(sizeof(ShimChunk) % 16 == 0, "chunk header keeps 16-byte alignment");

typedef struct ShimContext
{
	uint64		magic;
	const char *name;
	ShimChunk  *head;			/* list sentinel, itself a (poisoned) header */
	size_t		nchunks;
} ShimContext;

MemoryContext CurrentMemoryContext = NULL;

static ShimContext *top_context = NULL;

#define CHUNK_OF(p)		((ShimChunk *) ((char *) (p) - sizeof(ShimChunk)))
#define POINTER_OF(c)	((void *) ((char *) (c) + sizeof(ShimChunk)))

/* malloc, or abort: running out of memory is no case the harness tests */
static void *
must_malloc(size_t size)
{
	void	   *p = malloc(size);

	if (p == NULL)
	{
		fprintf(stderr, "shim: out of memory allocating %zu bytes\n", size);
		abort();
	}
	return p;
}

/* Create an empty context */
MemoryContext
shim_context_create(const char *name)
{
	ShimContext *cxt = must_malloc(sizeof(ShimContext));
	ShimChunk  *head = must_malloc(sizeof(ShimChunk));

	head->magic = 0;
	head->cxt = cxt;
	head->prev = head;
	head->next = head;
	head->size = 0;
	CLOSE_HEADER(head);
	cxt->magic = CONTEXT_MAGIC;
	cxt->name = name;
	cxt->head = head;
	cxt->nchunks = 0;
	return (MemoryContext) cxt;
}

/* The context palloc uses until someone switches; created on first use */
MemoryContext
shim_top_context(void)
{
	if (top_context == NULL)
		top_context = (ShimContext *) shim_context_create("top");
	return (MemoryContext) top_context;
}

/* A context (NULL: the top one), checked to be one of ours */
static ShimContext *
context_of(MemoryContext context)
{
	ShimContext *cxt = (ShimContext *) context;

	if (cxt == NULL)
		cxt = (ShimContext *) shim_top_context();
	if (cxt->magic != CONTEXT_MAGIC)
	{
		fprintf(stderr, "shim: %p is not a memory context\n", (void *) context);
		abort();
	}
	return cxt;
}

/* Put chunk c (its header open) first in its context's list */
static void
link_chunk(ShimContext *cxt, ShimChunk *c)
{
	ShimChunk  *head = cxt->head;
	ShimChunk  *first;

	OPEN_HEADER(head);
	first = head->next;
	c->cxt = cxt;
	c->prev = head;
	c->next = first;
	head->next = c;
	CLOSE_HEADER(head);
	OPEN_HEADER(first);
	first->prev = c;
	CLOSE_HEADER(first);
	cxt->nchunks++;
}

/* Take chunk c (its header open) out of its context's list */
static void
unlink_chunk(ShimChunk *c)
{
	ShimChunk  *prev = c->prev;
	ShimChunk  *next = c->next;

	OPEN_HEADER(prev);
	prev->next = next;
	CLOSE_HEADER(prev);
	OPEN_HEADER(next);
	next->prev = prev;
	CLOSE_HEADER(next);
	c->cxt->nchunks--;
}

/* The header of a chunk palloc returned, opened; aborts on a foreign pointer */
static ShimChunk *
open_chunk(void *pointer, const char *caller)
{
	ShimChunk  *c;

	if (pointer == NULL)
	{
		fprintf(stderr, "shim: %s(NULL)\n", caller);
		abort();
	}
	c = CHUNK_OF(pointer);
	OPEN_HEADER(c);
	if (c->magic != CHUNK_MAGIC)
	{
		fprintf(stderr, "shim: %s(%p): not a palloc'd chunk\n", caller, pointer);
		abort();
	}
	return c;
}

/* Refuse what palloc refuses: more than MaxAllocSize */
static void
check_size(Size size)
{
	if (!AllocSizeIsValid(size))
		elog(ERROR, "invalid memory alloc request size %zu", size);
}

/* Free every chunk of a context; the context stays usable */
void
shim_context_reset(MemoryContext context)
{
	ShimContext *cxt = context_of(context);
	ShimChunk  *head = cxt->head;
	ShimChunk  *c;

	OPEN_HEADER(head);
	c = head->next;
	while (c != head)
	{
		ShimChunk  *next;

		OPEN_HEADER(c);
		next = c->next;
		c->magic = 0;
		free(c);
		c = next;
	}
	head->next = head;
	head->prev = head;
	CLOSE_HEADER(head);
	cxt->nchunks = 0;
}

/* Free a context and all its chunks */
void
shim_context_delete(MemoryContext context)
{
	ShimContext *cxt = context_of(context);

	if (cxt == top_context)
	{
		fprintf(stderr, "shim: the top context cannot be deleted\n");
		abort();
	}
	if (CurrentMemoryContext == context)
		CurrentMemoryContext = shim_top_context();
	shim_context_reset(context);
	OPEN_HEADER(cxt->head);
	free(cxt->head);
	cxt->magic = 0;
	free(cxt);
}

/* How many chunks a context holds */
size_t
shim_context_chunks(MemoryContext context)
{
	return context_of(context)->nchunks;
}

/* Allocate size bytes in a context */
void *
MemoryContextAlloc(MemoryContext context, Size size)
{
	ShimContext *cxt = context_of(context);
	ShimChunk  *c;

	check_size(size);
	c = must_malloc(sizeof(ShimChunk) + size);
	c->magic = CHUNK_MAGIC;
	c->size = size;
	c->pad = 0;
	link_chunk(cxt, c);
	CLOSE_HEADER(c);
	return POINTER_OF(c);
}

/* Allocate size zeroed bytes in a context */
void *
MemoryContextAllocZero(MemoryContext context, Size size)
{
	void	   *p = MemoryContextAlloc(context, size);

	memset(p, 0, size);
	return p;
}

/* Allocate in CurrentMemoryContext */
void *
palloc(Size size)
{
	return MemoryContextAlloc(CurrentMemoryContext, size);
}

/* Allocate zeroed bytes in CurrentMemoryContext */
void *
palloc0(Size size)
{
	return MemoryContextAllocZero(CurrentMemoryContext, size);
}

/* Resize a chunk, keeping it in its context */
void *
repalloc(void *pointer, Size size)
{
	ShimChunk  *c;
	ShimContext *cxt;

	check_size(size);
	c = open_chunk(pointer, "repalloc");
	cxt = c->cxt;
	unlink_chunk(c);
	c = realloc(c, sizeof(ShimChunk) + size);
	if (c == NULL)
	{
		fprintf(stderr, "shim: out of memory reallocating to %zu bytes\n", (size_t) size);
		abort();
	}
	c->size = size;
	link_chunk(cxt, c);
	CLOSE_HEADER(c);
	return POINTER_OF(c);
}

/* Free one chunk */
void
pfree(void *pointer)
{
	ShimChunk  *c = open_chunk(pointer, "pfree");

	unlink_chunk(c);
	c->magic = 0;
	free(c);
}

/* A palloc'd copy of a string */
char *
pstrdup(const char *in)
{
	return pnstrdup(in, strlen(in));
}

/* A palloc'd copy of at most len bytes of a string, terminated */
char *
pnstrdup(const char *in, Size len)
{
	char	   *out;

	len = strnlen(in, len);
	out = palloc(len + 1);
	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

/* A palloc'd formatted string */
char *
psprintf(const char *fmt,...)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			return buf.data;
		enlargeStringInfo(&buf, needed);
	}
}

/* StringInfo, growing as the server's does */

/* A new empty StringInfo */
StringInfo
makeStringInfo(void)
{
	StringInfo	str = palloc(sizeof(StringInfoData));

	initStringInfo(str);
	return str;
}

/* Make str empty, with room for 1 kB */
void
initStringInfo(StringInfo str)
{
	str->maxlen = 1024;
	str->data = palloc(str->maxlen);
	resetStringInfo(str);
}

/* Make str empty, keeping its buffer */
void
resetStringInfo(StringInfo str)
{
	str->data[0] = '\0';
	str->len = 0;
	str->cursor = 0;
}

/* Make room for needed more bytes and a terminator, doubling the buffer */
void
enlargeStringInfo(StringInfo str, int needed)
{
	int			newlen;

	if (needed < 0)
		elog(ERROR, "invalid string enlargement request size: %d", needed);
	if ((Size) needed >= MaxAllocSize - (Size) str->len)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("out of memory"),
				 errdetail("Cannot enlarge string buffer containing %d bytes by %d more bytes.",
						   str->len, needed)));
	needed += str->len + 1;
	if (needed <= str->maxlen)
		return;
	newlen = 2 * str->maxlen;
	while (needed > newlen)
		newlen = 2 * newlen;
	if (newlen > (int) MaxAllocSize)
		newlen = (int) MaxAllocSize;
	str->data = repalloc(str->data, newlen);
	str->maxlen = newlen;
}

/* Format into the free space; 0 when it fitted, else the space it needs */
int
appendStringInfoVA(StringInfo str, const char *fmt, va_list args)
{
	int			avail = str->maxlen - str->len;
	int			printed;

	if (avail < 16)
		return 32;
	printed = vsnprintf(str->data + str->len, avail, fmt, args);
	if (printed < 0)
		elog(ERROR, "vsnprintf failed with format \"%s\"", fmt);
	if (printed < avail)
	{
		str->len += printed;
		return 0;
	}
	str->data[str->len] = '\0';
	return printed + 1;
}

/* Append formatted text, growing as needed */
void
appendStringInfo(StringInfo str, const char *fmt,...)
{
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(str, fmt, args);
		va_end(args);
		if (needed == 0)
			return;
		enlargeStringInfo(str, needed);
	}
}

/* Append bytes, then a terminator */
void
appendBinaryStringInfo(StringInfo str, const char *data, int datalen)
{
	enlargeStringInfo(str, datalen);
	memcpy(str->data + str->len, data, datalen);
	str->len += datalen;
	str->data[str->len] = '\0';
}

/* Append bytes without a terminator */
void
appendBinaryStringInfoNT(StringInfo str, const char *data, int datalen)
{
	enlargeStringInfo(str, datalen);
	memcpy(str->data + str->len, data, datalen);
	str->len += datalen;
}

/* Append a string */
void
appendStringInfoString(StringInfo str, const char *s)
{
	appendBinaryStringInfo(str, s, strlen(s));
}

/* Append one byte */
void
appendStringInfoChar(StringInfo str, char ch)
{
	if (str->len + 1 >= str->maxlen)
		enlargeStringInfo(str, 1);
	str->data[str->len++] = ch;
	str->data[str->len] = '\0';
}

/* Append count spaces */
void
appendStringInfoSpaces(StringInfo str, int count)
{
	if (count <= 0)
		return;
	enlargeStringInfo(str, count);
	memset(str->data + str->len, ' ', count);
	str->len += count;
	str->data[str->len] = '\0';
}

/* Errors */

#define MESSAGE_MAX 2048

typedef struct ShimError
{
	int			elevel;
	int			sqlerrcode;
	char		sqlstate[6];
	char		message[MESSAGE_MAX];
	char		detail[MESSAGE_MAX];
	char		hint[MESSAGE_MAX];
	char		location[256];
} ShimError;

static ShimError error_data;
static sigjmp_buf *recovery = NULL;

/* Run fn(arg) with a recovery point; true if it raised an error */
bool
shim_try(void (*fn) (void *arg), void *arg)
{
	sigjmp_buf *outer = recovery;
	sigjmp_buf	here;

	if (sigsetjmp(here, 0) != 0)
	{
		recovery = outer;
		return true;
	}
	recovery = &here;
	fn(arg);
	recovery = outer;
	return false;
}

/* The last error's SQLSTATE as the server encodes it */
int
shim_error_code(void)
{
	return error_data.sqlerrcode;
}

/* The last error's SQLSTATE, five characters */
const char *
shim_error_sqlstate(void)
{
	return error_data.sqlstate;
}

/* The last error's message */
const char *
shim_error_message(void)
{
	return error_data.message;
}

/* The last error's detail, or "" */
const char *
shim_error_detail(void)
{
	return error_data.detail;
}

/* Where the last error was raised: file:line function */
const char *
shim_error_location(void)
{
	return error_data.location;
}

/* Below ERROR nothing is reported: the macros skip their arguments */
bool
errstart(int elevel, const char *domain)
{
	if (elevel < ERROR)
		return false;
	memset(&error_data, 0, sizeof(error_data));
	error_data.elevel = elevel;
	error_data.sqlerrcode = ERRCODE_INTERNAL_ERROR;
	return true;
}

/* The errstart of ereport(ERROR), as the macro calls it */
bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

/* Set the error's SQLSTATE */
int
errcode(int sqlerrcode)
{
	error_data.sqlerrcode = sqlerrcode;
	return 0;
}

#define FORMAT_INTO(field, fmt) \
	do { \
		va_list		args_; \
		va_start(args_, fmt); \
		vsnprintf((field), sizeof(field), (fmt), args_); \
		va_end(args_); \
	} while (0)

/* Set the error's message */
int
errmsg(const char *fmt,...)
{
	FORMAT_INTO(error_data.message, fmt);
	return 0;
}

/* Set the error's message (elog) */
int
errmsg_internal(const char *fmt,...)
{
	FORMAT_INTO(error_data.message, fmt);
	return 0;
}

/* Set the error's detail */
int
errdetail(const char *fmt,...)
{
	FORMAT_INTO(error_data.detail, fmt);
	return 0;
}

/* Set the error's hint */
int
errhint(const char *fmt,...)
{
	FORMAT_INTO(error_data.hint, fmt);
	return 0;
}

/* Raise the error: jump to the innermost shim_try, or print it and abort */
void
errfinish(const char *filename, int lineno, const char *funcname)
{
	for (int i = 0; i < 5; i++)
		error_data.sqlstate[i] = PGUNSIXBIT(error_data.sqlerrcode >> (6 * i));
	error_data.sqlstate[5] = '\0';
	snprintf(error_data.location, sizeof(error_data.location), "%s:%d %s",
			 filename ? filename : "?", lineno, funcname ? funcname : "?");
	if (error_data.elevel == ERROR && recovery != NULL)
		siglongjmp(*recovery, 1);
	fprintf(stderr, "shim: uncaught %s %s: %s (%s)\n",
			error_data.elevel == ERROR ? "ERROR" : "FATAL or PANIC",
			error_data.sqlstate, error_data.message, error_data.location);
	if (error_data.detail[0])
		fprintf(stderr, "DETAIL: %s\n", error_data.detail);
	abort();
}

/* A failed Assert (builds with -DUSE_ASSERT_CHECKING) */
void
ExceptionalCondition(const char *conditionName, const char *errorType,
					 const char *fileName, int lineNumber)
{
	fprintf(stderr, "shim: %s(\"%s\", File: \"%s\", Line: %d)\n",
			errorType ? errorType : "?", conditionName ? conditionName : "?",
			fileName ? fileName : "?", lineNumber);
	abort();
}

/* UTF-8: the length of a character from its first byte, as the server's */
int
pg_mblen(const char *mbstr)
{
	unsigned char c = (unsigned char) *mbstr;

	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		return 2;
	if ((c & 0xf0) == 0xe0)
		return 3;
	if ((c & 0xf8) == 0xf0)
		return 4;
	return 1;
}

/* Characters in the first limit bytes (stopping at a NUL) */
int
pg_mbstrlen_with_len(const char *mbstr, int limit)
{
	int			n = 0;

	while (limit > 0 && *mbstr)
	{
		int			l = pg_mblen(mbstr);

		limit -= l;
		mbstr += l;
		n++;
	}
	return n;
}

/* The server's qsort: libc's will do */
void
pg_qsort(void *base, size_t nel, size_t elsize,
		 int (*cmp) (const void *, const void *))
{
	qsort(base, nel, elsize, cmp);
}
