/* libFuzzer target: the pure pieces of generation requests. Chat messages (roles and
 * contents cut from the input at NUL bytes) rendered with each template, and the stop
 * string matcher fed the input in pieces: what it releases plus what it holds must be a
 * prefix of what went in, and once a stop string matched the released text must not
 * contain it. Byte 0 picks the template and the piece size. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/transformer/chat.h"
#include "models/transformer/stop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void render(mdl_chat_template_t t, const char *text, size_t len)
{
    mdl_chat_message_t msgs[16] = {{0}};
    const char *parts[32];
    size_t n_parts = 0, n = 0;
    mdl_err_t err = {0};
    const char *p = text;
    char *out;

    /* text holds NUL-separated fields: role, content, role, content... */
    while (p < text + len && n_parts < 32) {
        parts[n_parts++] = p;
        p += strlen(p) + 1;
    }
    for (size_t i = 0; i + 1 < n_parts && n < 16; i += 2)
        msgs[n++] = (mdl_chat_message_t){.role = parts[i], .content = parts[i + 1]};
    out = mdl_chat_render(t, msgs, n, "<s>", "</s>", &err);
    if (!out) {
        if ((err.code != -EPROTO && err.code != -ENOMEM) || !err.msg[0])
            abort();
        return;
    }
    /* every message is in the prompt: whole, or (Llama-2 strips like str.strip) its
     * content without the ASCII whitespace around it */
    for (size_t i = 0; i < n; i++) {
        const char *c = msgs[i].content, *e = c + strlen(c);
        if (t == MDL_CHAT_TEMPLATE_LLAMA2) {
            while (*c && strchr(" \t\n\r\f\v", *c))
                c++;
            while (e > c && strchr(" \t\n\r\f\v", e[-1]))
                e--;
        }
        if (!memmem(out, strlen(out), c, (size_t)(e - c)))
            abort();
    }
    free(out);
}

static void stops(const char *text, size_t len, size_t piece)
{
    /* the first two NUL-terminated fields are stop strings, the rest is generated text */
    const char *stop_list[2] = {0};
    size_t n_stops = 0, pos = 0, out_len = 0;
    char *out = malloc(len + 1);
    mdl_stop_t m;
    const char *rel;
    size_t rel_len;
    int matched = 0;

    if (!out)
        return;
    while (n_stops < 2 && pos < len) {
        size_t l = strlen(text + pos);
        if (l == 0 || l > MDL_STOP_MAX_BYTES)
            break;
        stop_list[n_stops++] = text + pos;
        pos += l + 1;
    }
    const char *gen = text + pos;
    size_t gen_len = pos < len ? len - pos : 0;
    mdl_stop_init(&m, stop_list, n_stops);
    for (size_t i = 0; i < gen_len && !matched; i += piece) {
        size_t k = gen_len - i < piece ? gen_len - i : piece;
        int r = mdl_stop_feed(&m, gen + i, k, &rel, &rel_len);
        if (r < 0)
            goto out;
        memcpy(out + out_len, rel, rel_len);
        out_len += rel_len;
        matched = r;
    }
    if (!matched) {
        mdl_stop_flush(&m, &rel, &rel_len);
        memcpy(out + out_len, rel, rel_len);
        out_len += rel_len;
        if (out_len != gen_len)
            abort();
    }
    if (out_len > gen_len || memcmp(out, gen, out_len) != 0)
        abort();
    out[out_len] = '\0';
    for (size_t s = 0; s < n_stops; s++)
        if (memmem(out, out_len, stop_list[s], strlen(stop_list[s])))
            abort();
out:
    mdl_stop_done(&m);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size < 1)
        return 0;
    text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    render((mdl_chat_template_t)(data[0] % 3), text, size - 1);
    stops(text, size - 1, 1 + (data[0] >> 2) % 8);
    free(text);
    return 0;
}
