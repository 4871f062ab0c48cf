#include "chat.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct text {
    char *p;
    size_t len, cap;
    bool failed;
} text_t;

static void put_n(text_t *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static void put(text_t *t, const char *s)
{
    put_n(t, s, strlen(s));
}

/* Llama-2's template strips each message's content (Python str.strip: ASCII whitespace
 * here, which is what the tokenizer sees around the [INST] markers). */
static void put_stripped(text_t *t, const char *s)
{
    const char *end = s + strlen(s);
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r' ||
                       end[-1] == '\f' || end[-1] == '\v'))
        end--;
    put_n(t, s, (size_t)(end - s));
}

static const char *const names[] = {"plain", "chatml", "llama2"};

int mdl_chat_template_parse(const char *name, mdl_chat_template_t *ret, mdl_err_t *reterr)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i]) == 0) {
            *ret = (mdl_chat_template_t)i;
            return 0;
        }
    }
    return mdl_err_set(reterr, -EINVAL, "unknown chat template '%.64s' (plain, chatml, llama2)", name);
}

const char *mdl_chat_template_name(mdl_chat_template_t t)
{
    return names[t];
}

const char *mdl_chat_stop_text(mdl_chat_template_t t)
{
    return t == MDL_CHAT_TEMPLATE_CHATML ? "<|im_end|>" : NULL;
}

static bool is_role(const char *role)
{
    return strcmp(role, "system") == 0 || strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0;
}

static int render_llama2(text_t *t, const mdl_chat_message_t *msgs, size_t n, const char *bos,
                         const char *eos, mdl_err_t *reterr)
{
    const char *system = NULL;
    size_t first = 0;
    if (n > 0 && strcmp(msgs[0].role, "system") == 0) {
        system = msgs[0].content;
        first = 1;
    }
    if (first == n)
        return mdl_err_set(reterr, -EPROTO, "messages: the llama2 template needs a user message");
    for (size_t i = first; i < n; i++) {
        bool want_user = (i - first) % 2 == 0;
        if (strcmp(msgs[i].role, want_user ? "user" : "assistant") != 0)
            return mdl_err_set(reterr, -EPROTO,
                               "messages[%zu]: the llama2 template needs roles alternating "
                               "user/assistant after an optional system message, got '%.32s'",
                               i, msgs[i].role);
        if (want_user) {
            put(t, bos ? bos : "");
            put(t, "[INST] ");
            if (i == first && system) {
                put(t, "<<SYS>>\n");
                put(t, system);
                put(t, "\n<</SYS>>\n\n");
            }
            put_stripped(t, msgs[i].content);
            put(t, " [/INST]");
        } else {
            put(t, " ");
            put_stripped(t, msgs[i].content);
            put(t, " ");
            put(t, eos ? eos : "");
        }
    }
    if ((n - first) % 2 == 0)
        return mdl_err_set(reterr, -EPROTO, "messages[%zu]: the last message must be the user's", n - 1);
    return 0;
}

char *mdl_chat_render(mdl_chat_template_t tmpl, const mdl_chat_message_t *msgs, size_t n,
                      const char *bos, const char *eos, mdl_err_t *reterr)
{
    text_t t = {0};
    int r = 0;

    if (n == 0) {
        mdl_err_set(reterr, -EPROTO, "messages: at least one message is required");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_role(msgs[i].role)) {
            mdl_err_set(reterr, -EPROTO, "messages[%zu].role: '%.32s' is not system, user or assistant",
                        i, msgs[i].role);
            return NULL;
        }
    }
    switch (tmpl) {
    case MDL_CHAT_TEMPLATE_CHATML:
        for (size_t i = 0; i < n; i++) {
            put(&t, "<|im_start|>");
            put(&t, msgs[i].role);
            put(&t, "\n");
            put(&t, msgs[i].content);
            put(&t, "<|im_end|>\n");
        }
        put(&t, "<|im_start|>assistant\n");
        break;
    case MDL_CHAT_TEMPLATE_LLAMA2:
        r = render_llama2(&t, msgs, n, bos, eos, reterr);
        break;
    case MDL_CHAT_TEMPLATE_PLAIN:
        for (size_t i = 0; i < n; i++) {
            put(&t, msgs[i].role);
            put(&t, ": ");
            put(&t, msgs[i].content);
            put(&t, "\n");
        }
        put(&t, "assistant:");
        break;
    }
    if (r == 0 && t.failed)
        r = mdl_err_set(reterr, -ENOMEM, "out of memory rendering the chat prompt");
    if (r < 0) {
        free(t.p);
        return NULL;
    }
    return t.p;
}
