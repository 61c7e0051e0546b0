import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePageUrl, utmCharsMax } from '../../../src/core/collect/enrich/url.ts';
import { classifyReferrer, knownSource } from '../../../src/core/collect/enrich/referrer.ts';
import {
  createUserAgentDescriber, describeUserAgent, isBrowserLike,
} from '../../../src/core/collect/enrich/user-agent.ts';
import { LruCache } from '../../../src/core/collect/lru.ts';

describe('parsePageUrl', () => {
  test('path and host, without query or fragment', () => {
    assert.deepEqual(parsePageUrl('https://Shop.Example.com:8443/products/42?email=a@b.c#reviews'), {
      path: '/products/42', host: 'shop.example.com', utmSource: null, utmMedium: null, utmCampaign: null,
    });
  });

  test('a bare origin has path "/"', () => {
    assert.equal(parsePageUrl('https://example.com').path, '/');
  });

  test('a path-only URL has no host', () => {
    assert.deepEqual(parsePageUrl('/pricing?utm_source=news#top'), {
      path: '/pricing', host: null, utmSource: 'news', utmMedium: null, utmCampaign: null,
    });
  });

  test('UTM parameters are read, trimmed and kept as given', () => {
    const url = 'https://example.com/?utm_source=%20Newsletter%20&utm_medium=email&utm_campaign=Spring+Sale';
    assert.deepEqual(parsePageUrl(url), {
      path: '/', host: 'example.com', utmSource: 'Newsletter', utmMedium: 'email', utmCampaign: 'Spring Sale',
    });
  });

  test('blank UTM values are absent; long ones are cut to 128 characters', () => {
    const long = 'c'.repeat(utmCharsMax + 10);
    const parts = parsePageUrl(`https://example.com/?utm_source=&utm_medium=%20&utm_campaign=${long}`);
    assert.equal(parts.utmSource, null);
    assert.equal(parts.utmMedium, null);
    assert.equal(parts.utmCampaign, 'c'.repeat(utmCharsMax));
  });

  test('UTM-like parameters in the fragment are not campaign data', () => {
    assert.equal(parsePageUrl('https://example.com/#utm_source=x').utmSource, null);
  });
});

describe('classifyReferrer', () => {
  const sourceOf = (referrer: string): string | null => classifyReferrer(referrer, 'shop.example').source;

  test('search engines get canonical names, across country domains and subdomains', () => {
    assert.equal(sourceOf('https://www.google.com/'), 'Google');
    assert.equal(sourceOf('https://www.google.co.uk/search?q=shoes'), 'Google');
    assert.equal(sourceOf('https://google.de/'), 'Google');
    assert.equal(sourceOf('https://www.bing.com/search?q=x'), 'Bing');
    assert.equal(sourceOf('https://duckduckgo.com/'), 'DuckDuckGo');
    assert.equal(sourceOf('https://search.yahoo.co.jp/search'), 'Yahoo');
    assert.equal(sourceOf('https://www.baidu.com/link'), 'Baidu');
    assert.equal(sourceOf('https://yandex.ru/search'), 'Yandex');
    assert.equal(sourceOf('https://www.ecosia.org/search'), 'Ecosia');
  });

  test('social networks get canonical names, including link shorteners and app hosts', () => {
    assert.equal(sourceOf('https://m.facebook.com/'), 'Facebook');
    assert.equal(sourceOf('https://l.facebook.com/l.php?u=x'), 'Facebook');
    assert.equal(sourceOf('https://l.instagram.com/'), 'Instagram');
    assert.equal(sourceOf('https://t.co/abc'), 'Twitter');
    assert.equal(sourceOf('https://twitter.com/someone'), 'Twitter');
    assert.equal(sourceOf('https://x.com/someone'), 'Twitter');
    assert.equal(sourceOf('https://www.linkedin.com/feed/'), 'LinkedIn');
    assert.equal(sourceOf('https://old.reddit.com/r/x'), 'Reddit');
    assert.equal(sourceOf('https://m.youtube.com/watch?v=1'), 'YouTube');
    assert.equal(sourceOf('https://youtu.be/1'), 'YouTube');
    assert.equal(sourceOf('https://www.pinterest.co.uk/pin/1'), 'Pinterest');
    assert.equal(sourceOf('https://www.tiktok.com/@x'), 'TikTok');
    assert.equal(sourceOf('https://github.com/org/repo'), 'GitHub');
    assert.equal(sourceOf('https://news.ycombinator.com/item?id=1'), 'Hacker News');
  });

  test('mail clients: webmail hosts and the Gmail app', () => {
    assert.equal(sourceOf('https://mail.google.com/mail/u/0/'), 'Gmail');
    assert.equal(sourceOf('android-app://com.google.android.gm/'), 'Gmail');
    assert.equal(sourceOf('https://outlook.live.com/mail/0/'), 'Outlook');
    assert.equal(sourceOf('https://mail.yahoo.com/d/folders/1'), 'Yahoo Mail');
  });

  test('other sites are their host without "www."', () => {
    assert.equal(sourceOf('https://www.some-blog.net/post?id=3'), 'some-blog.net');
    assert.equal(sourceOf('https://blog.example.org/'), 'blog.example.org');
  });

  test('brand names only count before a short country suffix', () => {
    assert.equal(knownSource('google.example.com'), null);
    assert.equal(knownSource('mygoogle.com'), null);
    assert.equal(knownSource('news.google.com'), 'Google');
  });

  test('the referrer is kept without query or fragment', () => {
    assert.deepEqual(classifyReferrer('https://www.some-blog.net/post/1?session=abc#c', 'shop.example'), {
      referrer: 'https://www.some-blog.net/post/1', source: 'some-blog.net',
    });
  });

  test('a referrer from the page\'s own host (with or without www.) is internal', () => {
    assert.deepEqual(classifyReferrer('https://shop.example/cart', 'shop.example'), { referrer: null, source: null });
    assert.deepEqual(classifyReferrer('https://www.shop.example/cart', 'shop.example'), { referrer: null, source: null });
    assert.deepEqual(classifyReferrer('https://shop.example/cart', 'www.shop.example'), { referrer: null, source: null });
  });

  test('no referrer, an unreadable one, or a non-web scheme is a direct visit', () => {
    for (const referrer of [null, 'not a url', 'about:blank', 'file:///tmp/a.html', 'chrome-extension://abc/x']) {
      assert.deepEqual(classifyReferrer(referrer, 'shop.example'), { referrer: null, source: null });
    }
  });

  test('without a page host, every readable referrer is external', () => {
    assert.equal(classifyReferrer('https://shop.example/cart', null).source, 'shop.example');
  });
});

describe('describeUserAgent', () => {
  const chromeWindows = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
  const cases: [string, string, { browser: string; os: string; device: string | null }][] = [
    ['Chrome on Windows', chromeWindows, { browser: 'Chrome', os: 'Windows', device: 'desktop' }],
    ['Edge on Windows', `${chromeWindows} Edg/124.0.2478.67`, { browser: 'Edge', os: 'Windows', device: 'desktop' }],
    ['Opera on Windows', `${chromeWindows} OPR/109.0.0.0`, { browser: 'Opera', os: 'Windows', device: 'desktop' }],
    ['Safari on macOS', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15', { browser: 'Safari', os: 'macOS', device: 'desktop' }],
    ['Firefox on Linux', 'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0', { browser: 'Firefox', os: 'Linux', device: 'desktop' }],
    ['Chrome on a Chromebook', 'Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', { browser: 'Chrome', os: 'ChromeOS', device: 'desktop' }],
    ['Safari on an iPhone', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1', { browser: 'Safari', os: 'iOS', device: 'mobile' }],
    ['Samsung Internet on Android', 'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36', { browser: 'Samsung Internet', os: 'Android', device: 'mobile' }],
    ['Safari on an iPad', 'Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1', { browser: 'Safari', os: 'iOS', device: 'tablet' }],
    ['Chrome on an Android tablet', 'Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', { browser: 'Chrome', os: 'Android', device: 'tablet' }],
  ];
  for (const [name, userAgent, expected] of cases) {
    test(`${name}: ${expected.browser}, ${expected.os}, ${expected.device}`, () => {
      assert.deepEqual(describeUserAgent(userAgent), { bot: false, ...expected });
    });
  }

  test('crawlers and HTTP tools are bots', () => {
    for (const userAgent of [
      'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
      'Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.201 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
      'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36',
      'curl/8.5.0',
      'python-requests/2.31.0',
    ]) {
      assert.equal(describeUserAgent(userAgent).bot, true, userAgent);
    }
  });

  test('an unrecognisable agent is unknown, not an error', () => {
    assert.deepEqual(describeUserAgent('   '), { bot: false, browser: null, os: null, device: null });
    assert.deepEqual(describeUserAgent('\u0000\uffff'), { bot: false, browser: null, os: null, device: null });
  });

  test('results are memoized: the same object comes back for the same string', () => {
    const describe = createUserAgentDescriber(2);
    assert.equal(describe(chromeWindows), describe(chromeWindows));
  });

  test('browser-like agents are told apart from HTTP libraries', () => {
    assert.equal(isBrowserLike(chromeWindows), true);
    assert.equal(isBrowserLike('okhttp/4.12.0'), false);
    assert.equal(isBrowserLike('curl/8.5.0'), false);
  });
});

describe('LruCache', () => {
  test('keeps at most entriesMax entries and evicts the least recently used', () => {
    const cache = new LruCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    assert.equal(cache.get('a'), 1); // a is now the most recent
    cache.set('c', 3);
    assert.equal(cache.size, 2);
    assert.equal(cache.get('b'), undefined);
    assert.equal(cache.get('a'), 1);
    assert.equal(cache.get('c'), 3);
  });

  test('refuses a bound below one', () => {
    assert.throws(() => new LruCache(0));
  });
});
