/*
 * src/jsonbuild.h
 *
 * Building jsonb results directly in C, without printing and re-parsing
 * text: the functions at the till answer in jsonb.
 */
#ifndef LOYALTY_JSONBUILD_H
#define LOYALTY_JSONBUILD_H

#include "utils/date.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

typedef JsonbParseState *JsonBuild;

extern void JbBeginObject(JsonBuild *jb, const char *key);
extern void JbEndObject(JsonBuild *jb);
extern void JbBeginArray(JsonBuild *jb, const char *key);
extern void JbEndArray(JsonBuild *jb);
extern void JbText(JsonBuild *jb, const char *key, const char *value);
extern void JbTextIf(JsonBuild *jb, const char *key, const char *value);
extern void JbInt(JsonBuild *jb, const char *key, int64 value);
extern void JbNumeric(JsonBuild *jb, const char *key, Numeric value);
extern void JbBool(JsonBuild *jb, const char *key, bool value);
extern void JbNull(JsonBuild *jb, const char *key);
extern void JbJsonb(JsonBuild *jb, const char *key, Jsonb *value);
extern Jsonb *JbFinish(JsonBuild *jb);
extern Jsonb *JbFinishArray(JsonBuild *jb);
extern Jsonb *JbCopy(MemoryContext cxt, const Jsonb *j);
extern void JbTimestamp(JsonBuild *jb, const char *key, TimestampTz t);

/* A date as answers print it */
extern char *FormatDate(DateADT date);

#endif
