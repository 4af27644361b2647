/*
 * The kinds of personal data that `redact:` names, as bits of a policy.  The
 * config owns this vocabulary (it reads the names); trace/redact.c finds and
 * replaces what each kind matches (docs/privacy.md).
 */
#ifndef GYRE_CONFIG_REDACT_KINDS_H
#define GYRE_CONFIG_REDACT_KINDS_H

#define GYRE_REDACT_EMAIL 0x1u   /* replaced by "[email]" */
#define GYRE_REDACT_PHONE 0x2u   /* "[phone]" */
#define GYRE_REDACT_CARD 0x4u    /* "[card]" */
#define GYRE_REDACT_API_KEY 0x8u /* "[api_key]"; "Bearer X" keeps the word: "Bearer [api_key]" */
#define GYRE_REDACT_ALL 0xfu

/* The bit of a kind's name ("email", "phone", "card", "api_key"), or 0 (config.c). */
unsigned gyre_config_redact_kind(const char *name);

#endif
