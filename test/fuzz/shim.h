/*
 * test/fuzz/shim.h
 *
 * The few backend services the condition core (src/condparse.c, condcode.c,
 * condeval.c, condindex.c) needs, for running it outside the server: the
 * fuzz harness (test/fuzz/fuzz_condition.c) and the micro-benchmark
 * (test/bench/condition_match.c) link test/fuzz/shim.c instead of postgres.
 *
 * Memory: palloc and friends allocate in CurrentMemoryContext; every chunk
 * is tracked by its context, and shim_context_reset() frees all of a
 * context's chunks at once.  Each chunk is its own malloc block, so that
 * AddressSanitizer sees the exact bounds of every allocation.
 *
 * Errors: ereport(ERROR) jumps back to the innermost shim_try(); the error
 * stays readable through shim_error_*() until the next one.  Lower levels
 * are ignored.  With no shim_try() active, an error is printed and aborts.
 *
 * Encoding: the "server encoding" is UTF-8.
 */
#ifndef LOYALTY_SHIM_H
#define LOYALTY_SHIM_H

#include "postgres.h"

/* Memory contexts */
extern MemoryContext shim_context_create(const char *name);
extern void shim_context_reset(MemoryContext cxt);
extern void shim_context_delete(MemoryContext cxt);
extern size_t shim_context_chunks(MemoryContext cxt);

/* The context CurrentMemoryContext starts as; never deleted */
extern MemoryContext shim_top_context(void);

/* Run fn(arg); true if it raised an error (ereport at ERROR or above) */
extern bool shim_try(void (*fn) (void *arg), void *arg);

/* The last error raised */
extern int	shim_error_code(void);
extern const char *shim_error_sqlstate(void);
extern const char *shim_error_message(void);
extern const char *shim_error_detail(void);
extern const char *shim_error_location(void);

#endif							/* LOYALTY_SHIM_H */
