/*
 * src/access.h
 *
 * Tenants: the programmes the session's role may reach, as bound in
 * loyalty.program_access, checked by every function that reads or changes a
 * programme's data.
 */
#ifndef LOYALTY_ACCESS_H
#define LOYALTY_ACCESS_H

extern void loyalty_access_init(void);
extern bool ProgramOpen(int64 program_id);
extern void RequireProgram(int64 program_id, const char *object_fmt,...) pg_attribute_printf(2, 3);
extern void RequireEveryProgram(const char *what);
extern const char *ActorName(void);

#endif
