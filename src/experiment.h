/*
 * src/experiment.h
 *
 * Experiments (src/experiment.c): the programme's active experiments, kept
 * compiled with its catalogue, the variant a customer is assigned to, and
 * the gate they put on the promotions and challenges their variants list.
 * docs/experiments.md is the contract.
 */
#ifndef LOYALTY_EXPERIMENT_H
#define LOYALTY_EXPERIMENT_H

#include "utils/timestamp.h"

#define EXPERIMENT_MAX_VARIANTS 64

/* No variant: the experiment does not apply to the receipt */
#define VARIANT_NOT_APPLYING (-2)
/* No variant: no customer was found */
#define VARIANT_NO_CUSTOMER (-1)

/* An active experiment with its variants, as the catalogue keeps it */
typedef struct CatExperiment
{
	int64		id;
	char	   *code;
	char	   *salt;			/* the code when the experiment has none */
	TimestampTz starts_at;
	bool		has_end;
	TimestampTz ends_at;
	int			nvariants;		/* in the byte order of their codes */
	char	  **variants;
	int64	   *upto;			/* running sums of the weights */
} CatExperiment;

struct Catalog;

extern void ExperimentLoad(struct Catalog *cat);
extern int	ExperimentVariant(const CatExperiment *e, int64 customer);
extern int *ExperimentAssign(const struct Catalog *cat, TimestampTz at, bool found, int64 customer);
extern bool ExperimentAllows(const struct Catalog *cat, const uint64 *masks, const int *variants);

#endif
