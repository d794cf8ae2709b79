/* http.c - downloads and HEAD requests with libcurl; see stream.h. */
#include "stream.h"

#include <curl/curl.h>

#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "version.h"

#define MAX_REDIRECTS 10L
/* A transfer slower than this for that long is stuck, not slow: abort it
 * long before COPY_TIMEOUT (12 h by default) would. */
#define LOW_SPEED_BYTES 1024L
#define LOW_SPEED_SECONDS 60L

/* What the server refuses to answer to HEAD but serves to GET: pre-signed
 * object-store URLs are signed for GET only (403), some servers do not
 * implement HEAD (405, 501). */
static bool head_refused(long status)
{
    return status == 403 || status == 405 || status == 501;
}

static int http_init(void)
{
    static bool done;
    static CURLcode rc;

    if (!done) {
        rc = curl_global_init(CURL_GLOBAL_DEFAULT);
        done = true;
    }
    if (rc != CURLE_OK)
        return fail("cannot initialise libcurl: %s", curl_easy_strerror(rc));
    return 0;
}

/* The URL without "user:password@": messages end up in oned's log and in
 * the image's error, where credentials have no business. */
static char *url_for_messages(const char *url)
{
    const char *host = strstr(url, "://");
    const char *end;
    const char *at;

    if (!host)
        return xstrdup(url);
    host += 3;
    end = host + strcspn(host, "/?#");
    at = memrchr(host, '@', (size_t)(end - host));
    if (!at)
        return xstrdup(url);
    return xasprintf("%.*s%s", (int)(host - url), url, at + 1);
}

/* Settings shared by GET and HEAD. Content decoding stays off: the bytes
 * hashed and stored must be the file as the server has it, as with
 * OpenNebula's downloader.sh, even when it says Content-Encoding: gzip. */
static CURLcode http_setup(CURL *h, const char *url, char *errbuf, unsigned timeout)
{
    CURLcode rc = CURLE_OK;

#define SET(opt, val)                                                                   \
    do {                                                                                \
        if (rc == CURLE_OK)                                                             \
            rc = curl_easy_setopt(h, opt, val);                                         \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_USERAGENT, "qcow2c/" QCOW2C_VERSION);
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, MAX_REDIRECTS);
    /* A redirect must not lead to file:// or any other scheme. */
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_FAILONERROR, 1L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_HTTP_CONTENT_DECODING, 0L);
    SET(CURLOPT_CONNECTTIMEOUT, (long)config_uint("HTTP_CONNECT_TIMEOUT"));
    SET(CURLOPT_TIMEOUT, (long)timeout);
    SET(CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
    SET(CURLOPT_LOW_SPEED_TIME, LOW_SPEED_SECONDS);
#undef SET
    return rc;
}

/* One reason for a failed transfer: the HTTP status when the server
 * answered with an error, libcurl's own words otherwise. */
static int transfer_failed(CURL *h, CURLcode rc, const char *what, const char *url,
                           const char *errbuf)
{
    _cleanup_free_ char *shown = url_for_messages(url);
    long status = 0;

    if (rc == CURLE_HTTP_RETURNED_ERROR &&
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status)
        return fail("cannot %s %s: HTTP %ld", what, shown, status);
    return fail("cannot %s %s: %s", what, shown, *errbuf ? errbuf : curl_easy_strerror(rc));
}

struct fetch {
    struct sink *to;
    uint64_t max; /* 0 = everything */
    uint64_t got;
    bool enough;      /* `max` reached: the abort that follows is a success */
    bool sink_failed; /* the reason is the sink's */
};

/* Returning less than `len` makes libcurl abort with CURLE_WRITE_ERROR. */
static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
    struct fetch *f = arg;
    size_t len = size * nmemb;
    size_t take = len;

    if (f->max && take > f->max - f->got)
        take = (size_t)(f->max - f->got);
    if (sink_write(f->to, data, take) < 0) {
        f->sink_failed = true;
        return 0;
    }
    f->got += take;
    if (f->max && f->got >= f->max) {
        f->enough = true;
        return 0;
    }
    return len;
}

int http_fetch(const char *url, struct sink *to, uint64_t max_bytes)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct fetch f = { .to = to, .max = max_bytes };
    CURLcode rc;
    CURL *h;

    if (!is_http_url(url))
        return fail("'%s' is not an http:// or https:// URL", url);
    if (http_init() < 0)
        return -1;
    h = curl_easy_init();
    if (!h)
        return fail("cannot initialise libcurl");
    rc = http_setup(h, url, errbuf, config_uint("COPY_TIMEOUT"));
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(h);
    if (f.enough && rc == CURLE_WRITE_ERROR)
        rc = CURLE_OK;
    if (rc != CURLE_OK && !f.sink_failed)
        transfer_failed(h, rc, "download", url, errbuf);
    curl_easy_cleanup(h);
    return rc == CURLE_OK ? 0 : -1;
}

/* Stops a GET as soon as the body starts: the headers are all we want. */
static size_t stop_at_body(char *data UNUSED, size_t size UNUSED, size_t nmemb UNUSED,
                           void *arg UNUSED)
{
    return 0;
}

static CURLcode get_headers_only(CURL *h)
{
    CURLcode rc = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);

    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, stop_at_body);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(h);
    return rc == CURLE_WRITE_ERROR ? CURLE_OK : rc;
}

int http_content_length(const char *url, uint64_t *len)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    unsigned timeout = config_uint("TIMEOUT");
    unsigned copy_timeout = config_uint("COPY_TIMEOUT");
    curl_off_t length = -1;
    long status = 0;
    CURLcode rc;
    CURL *h;
    int ret = -1;

    if (!is_http_url(url))
        return fail("'%s' is not an http:// or https:// URL", url);
    if (http_init() < 0)
        return -1;
    h = curl_easy_init();
    if (!h)
        return fail("cannot initialise libcurl");
    /* One request, not a data copy; but it never gets more than a copy. */
    if (copy_timeout && (!timeout || copy_timeout < timeout))
        timeout = copy_timeout;
    rc = http_setup(h, url, errbuf, timeout);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(h);
    if (rc == CURLE_HTTP_RETURNED_ERROR &&
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
        head_refused(status)) {
        errbuf[0] = '\0';
        rc = get_headers_only(h);
    }
    if (rc == CURLE_OK)
        rc = curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    if (rc != CURLE_OK) {
        transfer_failed(h, rc, "get the size of", url, errbuf);
    } else if (length < 0) {
        _cleanup_free_ char *shown = url_for_messages(url);

        fail("cannot get the size of %s: the server sends no Content-Length", shown);
    } else {
        *len = (uint64_t)length;
        ret = 0;
    }
    curl_easy_cleanup(h);
    return ret;
}
