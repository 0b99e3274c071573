// The guest's page: /e/<share token>. Consent, a selfie, the photos the
// guest is in (previews; originals on request), a viewer, "download all"
// and "forget me". Mobile first, Russian and English.
import { render } from "preact";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";

import {
  ApiError,
  type Forgotten,
  type GuestEvent,
  type Match,
  type SearchResult,
  getJson,
  postWithProgress,
} from "../lib/api";
import { hasKey, initialLang, type Lang, saveLang, translator, type T } from "../lib/i18n";
import { shrink } from "../lib/image";
import "./style.css";

const token = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] ?? "");
const base = `/api/v1/guest/${encodeURIComponent(token)}`;

type Load =
  | { kind: "loading" }
  | { kind: "link"; code: string }
  | { kind: "ready"; event: GuestEvent };

type Busy =
  | { key: "preparing" | "uploading" | "searching" | "zip" | "waiting"; percent?: number; seconds?: number }
  | null;

/// How often, and for how long at most, a search the gateway shed (429 with
/// Retry-After: many guests at once) is sent again by itself.
const SHED_RETRIES = 3;
const SHED_MAX_WAIT_S = 30;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function errorText(t: T, e: unknown): string {
  if (e instanceof ApiError) {
    if (e.code === "network") return t("error.network");
    const key = `error.${e.code}`;
    if (hasKey(key)) return t(key, { message: e.message });
    return t("error.other", { message: e.message || e.code });
  }
  return t("error.other", { message: String(e) });
}

/// The studio's accent colour on buttons and links, with text that stays
/// readable on it (CSSOM: allowed by the page's CSP, unlike inline styles).
function brand(color: string | null) {
  if (!color || !/^#[0-9a-f]{6}$/i.test(color)) return;
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16) / 255);
  const lin = (c: number) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  const luminance = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  const root = document.documentElement.style;
  root.setProperty("--accent", color);
  // White text needs a dark accent (contrast 4.5:1 at luminance < 0.18).
  root.setProperty("--accent-ink", luminance < 0.18 ? "#ffffff" : "#111827");
  // Links on the light page need a dark enough colour.
  root.setProperty("--link", luminance < 0.18 ? color : "#1f2937");
}

/// Merges a new search into what was found: one entry per photo, its best
/// similarity and tier.
function merge(old: Match[], found: Match[]): Match[] {
  const byId = new Map(old.map((m) => [m.photo_id, m]));
  for (const m of found) {
    const had = byId.get(m.photo_id);
    if (!had || m.similarity > had.similarity) {
      byId.set(m.photo_id, had && had.tier === "match" ? { ...m, tier: "match" } : m);
    } else if (m.tier === "match" && had.tier !== "match") {
      byId.set(m.photo_id, { ...had, tier: "match" });
    }
  }
  return [...byId.values()].sort((a, b) => b.similarity - a.similarity);
}

function App() {
  const [lang, setLang] = useState<Lang>(initialLang);
  const t = useMemo(() => translator(lang), [lang]);
  const [load, setLoad] = useState<Load>({ kind: "loading" });
  const [consented, setConsented] = useState(false);
  const [agree, setAgree] = useState(false);
  const [busy, setBusy] = useState<Busy>(null);
  const [error, setError] = useState<string | null>(null);
  const [matches, setMatches] = useState<Match[] | null>(null);
  const [receipt, setReceipt] = useState<Forgotten | null>(null);
  const [open, setOpen] = useState<number | null>(null);
  const [viewing, setViewing] = useState<"all" | "together">("all");
  const lastSelfie = useRef<Blob | null>(null);
  const searchSeq = useRef(0);
  const fileInput = useRef<HTMLInputElement>(null);
  const [camera, setCamera] = useState(false);
  const [together, setTogether] = useState<Match[] | null>(null);
  const friendInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);

  useEffect(() => {
    getJson<GuestEvent>(base)
      .then((event) => {
        document.title = event.name;
        brand(event.accent_color);
        setLoad({ kind: "ready", event });
      })
      .catch((e: unknown) => setLoad({ kind: "link", code: e instanceof ApiError ? e.code : "INTERNAL" }));
  }, []);

  const switchLang = () => {
    const next: Lang = lang === "ru" ? "en" : "ru";
    saveLang(next);
    setLang(next);
  };

  const search = useCallback(
    async (file: Blob, event: GuestEvent) => {
      // A newer search wins: an older answer arriving late is dropped.
      const seq = ++searchSeq.current;
      const current = () => seq === searchSeq.current;
      setError(null);
      setReceipt(null);
      setBusy({ key: "preparing" });
      try {
        const selfie = await shrink(file);
        if (!current()) return;
        lastSelfie.current = selfie;
        const url = `${base}/search?consent=${encodeURIComponent(event.policy_version)}`;
        let result: SearchResult;
        for (let attempt = 0; ; attempt++) {
          setBusy({ key: "uploading", percent: 0 });
          try {
            const answer = await postWithProgress<SearchResult | null>(url, selfie, (f) => {
              if (!current()) return;
              setBusy(f < 1 ? { key: "uploading", percent: Math.round(f * 100) } : { key: "searching" });
            });
            if (!answer) throw new ApiError("INTERNAL", "", 200);
            result = answer;
            break;
          } catch (e) {
            // Shed by the gateway (many guests at once): wait as it asks,
            // counting down on screen, and send the selfie again.
            const wait = e instanceof ApiError && e.status === 429 ? e.retryAfter : null;
            if (wait === null || wait > SHED_MAX_WAIT_S || attempt >= SHED_RETRIES) throw e;
            for (let left = Math.max(1, Math.ceil(wait)); left > 0; left--) {
              if (!current()) return;
              setBusy({ key: "waiting", seconds: left });
              await sleep(1000);
            }
            if (!current()) return;
          }
        }
        if (!current()) return;
        setMatches((old) => merge(old ?? [], result.matches));
      } catch (e) {
        // An error keeps what was found before.
        if (current()) setError(errorText(t, e));
      } finally {
        if (current()) setBusy(null);
      }
    },
    [t],
  );

  const onFile = (event: GuestEvent) => (e: Event) => {
    const input = e.currentTarget as HTMLInputElement;
    const file = input.files?.[0];
    input.value = "";
    if (file) void search(file, event);
  };

  /// A form POST: the browser saves the ZIP to disk as it arrives, however
  /// large (no copy of it in the page's memory).
  const downloadAll = (list: Match[]) => {
    const form = document.createElement("form");
    form.method = "POST";
    form.action = `${base}/download`;
    form.hidden = true;
    for (const m of list) {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = "photo_ids";
      input.value = m.photo_id;
      form.append(input);
    }
    document.body.append(form);
    form.submit();
    form.remove();
  };

  /// "Me and a friend": the photos with both, from the guest's last selfie
  /// and the friend's (multipart: `selfie` and `together.0`).
  const searchTogether = async (friend: File, event: GuestEvent) => {
    const mine = lastSelfie.current;
    if (!mine) return;
    const seq = ++searchSeq.current;
    setError(null);
    setBusy({ key: "preparing" });
    try {
      const form = new FormData();
      form.append("selfie", mine, "selfie.jpg");
      form.append("together.0", await shrink(friend), "friend.jpg");
      if (seq !== searchSeq.current) return;
      setBusy({ key: "searching" });
      const response = await fetch(
        `${base}/search?consent=${encodeURIComponent(event.policy_version)}`,
        { method: "POST", body: form },
      ).catch(() => {
        throw new ApiError("network", "", 0);
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new ApiError(body.error?.code ?? "INTERNAL", body.error?.message ?? "", response.status);
      if (seq === searchSeq.current) setTogether((body as SearchResult).matches);
    } catch (e) {
      if (seq === searchSeq.current) setError(errorText(t, e));
    } finally {
      if (seq === searchSeq.current) setBusy(null);
    }
  };

  const forget = async () => {
    const selfie = lastSelfie.current;
    if (!selfie || !confirm(t("forget.confirm"))) return;
    searchSeq.current++;
    setError(null);
    try {
      const done = await postWithProgress<Forgotten>(`${base}/forget`, selfie, () => {});
      lastSelfie.current = null;
      setMatches(null);
      setTogether(null);
      setReceipt(done);
    } catch (e) {
      setError(errorText(t, e));
    }
  };

  const studio = load.kind === "ready" ? load.event : null;
  const header = (
    <header class="top">
      <span class="brand">
        {studio?.logo_url ? <img class="logo" src={studio.logo_url} alt="" /> : null}
        {studio ? studio.studio_name : "FacePass"}
      </span>
      <button type="button" class="link" onClick={switchLang} aria-label={t("lang.switchLabel")}>
        {t("lang.switch")}
      </button>
    </header>
  );

  if (load.kind === "loading") {
    return (
      <main>
        {header}
        <p class="status" role="status">
          {t("loading")}
        </p>
      </main>
    );
  }
  if (load.kind === "link") {
    const key =
      load.code === "LINK_EXPIRED"
        ? "link.expired"
        : load.code === "LINK_DISABLED"
          ? "link.disabled"
          : load.code === "NOT_FOUND" || load.code === "INVALID_ARGUMENT"
            ? "link.notFound"
            : "link.unavailable";
    return (
      <main>
        {header}
        <p class="notice" role="alert" data-state="link-error">
          {t(key)}
        </p>
      </main>
    );
  }

  const event = load.event;
  const you = (matches ?? []).filter((m) => m.tier === "match");
  const maybe = (matches ?? []).filter((m) => m.tier !== "match");
  const all = [...you, ...maybe];

  return (
    <main>
      {header}
      <h1>{event.name}</h1>
      {event.event_date ? (
        <p class="counts" data-date={event.event_date}>
          {new Date(`${event.event_date}T12:00:00`).toLocaleDateString(lang === "ru" ? "ru-RU" : "en-GB", {
            day: "numeric",
            month: "long",
            year: "numeric",
          })}
        </p>
      ) : null}
      <p class="counts">
        {t("event.photos", { indexed: event.indexed, total: event.photos })}
        {event.pending > 0 ? ` · ${t("event.pending", { pending: event.pending })}` : ""}
      </p>

      {!consented ? (
        <section class="card" aria-labelledby="consent-title" data-state="consent">
          <h2 id="consent-title">{t("consent.title")}</h2>
          <p>{t("consent.body", { studio: event.studio_name })}</p>
          <p class="small">
            {event.privacy_url ? (
              <a href={event.privacy_url} target="_blank" rel="noopener noreferrer">
                {t("consent.policy", { version: event.policy_version })}
              </a>
            ) : (
              t("consent.policy", { version: event.policy_version })
            )}
          </p>
          <label class="check">
            <input
              type="checkbox"
              checked={agree}
              onChange={(e) => setAgree((e.currentTarget as HTMLInputElement).checked)}
            />
            <span>{t("consent.agree")}</span>
          </label>
          <button type="button" class="primary" disabled={!agree} onClick={() => setConsented(true)}>
            {t("consent.continue")}
          </button>
        </section>
      ) : (
        <section class="card" aria-labelledby="selfie-title" data-state="selfie">
          <h2 id="selfie-title">{matches ? t("selfie.another") : t("selfie.title")}</h2>
          <p class="small">{t("selfie.hint")}</p>
          <input
            ref={fileInput}
            class="hidden"
            type="file"
            accept="image/*"
            capture="user"
            aria-hidden="true"
            tabIndex={-1}
            onChange={onFile(event)}
          />
          {"mediaDevices" in navigator ? (
            <button
              type="button"
              class="primary"
              data-action="camera"
              disabled={busy !== null && busy.key !== "zip"}
              onClick={() => {
                setError(null);
                setCamera(true);
              }}
            >
              {t("camera.open")}
            </button>
          ) : null}
          <button
            type="button"
            class={"mediaDevices" in navigator ? "secondary" : "primary"}
            data-action="gallery"
            disabled={busy !== null && busy.key !== "zip"}
            onClick={() => fileInput.current?.click()}
          >
            {"mediaDevices" in navigator ? t("camera.gallery") : matches ? t("selfie.another") : t("selfie.choose")}
          </button>
        </section>
      )}

      <p class="status" role="status" aria-live="polite">
        {busy
          ? busy.key === "uploading"
            ? t("status.uploading", { percent: busy.percent ?? 0 })
            : busy.key === "zip"
              ? t("results.preparingZip")
              : busy.key === "waiting"
                ? t("status.waiting", { seconds: busy.seconds ?? 1 })
                : t(`status.${busy.key}`)
          : matches && matches.length > 0
            ? t("status.found", { count: matches.length })
            : ""}
      </p>
      {busy && busy.key === "uploading" ? (
        <progress max={100} value={busy.percent ?? 0} aria-hidden="true" />
      ) : null}
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {receipt ? (
        <p class="notice" role="status" data-state="forgotten">
          {t("forget.done", { faces: receipt.faces_deleted, photos: receipt.photo_ids.length })}
        </p>
      ) : null}

      {matches && matches.length === 0 ? (
        <p class="notice" data-state="empty">
          {t("results.none")}
        </p>
      ) : null}
      {all.length > 0 ? (
        <>
          <div class="actions">
            <button type="button" onClick={() => downloadAll(all)} disabled={busy !== null}>
              {t("results.downloadAll", { count: all.length })}
            </button>
            <button
              type="button"
              data-action="together"
              onClick={() => friendInput.current?.click()}
              disabled={busy !== null}
              title={t("together.hint")}
            >
              {t("together.button")}
            </button>
            <input
              ref={friendInput}
              class="hidden"
              type="file"
              accept="image/*"
              aria-hidden="true"
              tabIndex={-1}
              onChange={(e) => {
                const input = e.currentTarget as HTMLInputElement;
                const file = input.files?.[0];
                input.value = "";
                if (file) void searchTogether(file, event);
              }}
            />
            <button type="button" class="link" onClick={() => void forget()}>
              {t("forget.button")}
            </button>
          </div>
          {together ? (
            together.length ? (
              <section data-state="together">
                <Grid
                  title={t("together.title")}
                  list={together}
                  offset={0}
                  total={together.length}
                  t={t}
                  onOpen={(i) => {
                    setViewing("together");
                    setOpen(i);
                  }}
                />
              </section>
            ) : (
              <p class="notice" data-state="together-none">
                {t("together.none")}
              </p>
            )
          ) : null}
          <Grid
            title={t("results.you")}
            list={you}
            offset={0}
            total={all.length}
            t={t}
            onOpen={(i) => {
              setViewing("all");
              setOpen(i);
            }}
          />
          <Grid
            title={t("results.maybe")}
            list={maybe}
            offset={you.length}
            total={all.length}
            t={t}
            onOpen={(i) => {
              setViewing("all");
              setOpen(i);
            }}
          />
        </>
      ) : null}
      {camera ? (
        <Camera
          t={t}
          onShot={(blob) => {
            setCamera(false);
            void search(blob, event);
          }}
          onClose={(problem) => {
            setCamera(false);
            if (problem) setError(problem);
          }}
        />
      ) : null}
      {open !== null && (viewing === "together" ? together ?? [] : all)[open] ? (
        <Viewer
          list={viewing === "together" ? together ?? [] : all}
          index={open}
          t={t}
          onMove={setOpen}
          onClose={() => setOpen(null)}
        />
      ) : null}
    </main>
  );
}

/// The in-page camera: the front camera's picture with an oval to put the
/// face in; the shot is taken from the video at its own resolution.
function Camera(props: { t: T; onShot: (b: Blob) => void; onClose: (problem?: string) => void }) {
  const { t, onShot, onClose } = props;
  const video = useRef<HTMLVideoElement>(null);
  const stream = useRef<MediaStream | null>(null);
  const [ready, setReady] = useState(false);

  useEffect(() => {
    let stopped = false;
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 960 } }, audio: false })
      .then((s) => {
        if (stopped) {
          s.getTracks().forEach((track) => track.stop());
          return;
        }
        stream.current = s;
        if (video.current) {
          video.current.srcObject = s;
          void video.current.play().then(() => setReady(true));
        }
      })
      .catch((e: DOMException) =>
        onClose(e.name === "NotAllowedError" ? t("camera.denied") : t("camera.none")),
      );
    const keys = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    addEventListener("keydown", keys);
    return () => {
      stopped = true;
      removeEventListener("keydown", keys);
      stream.current?.getTracks().forEach((track) => track.stop());
    };
  }, []);

  const take = () => {
    const v = video.current;
    if (!v || !v.videoWidth) return;
    const canvas = document.createElement("canvas");
    canvas.width = v.videoWidth;
    canvas.height = v.videoHeight;
    canvas.getContext("2d")?.drawImage(v, 0, 0);
    canvas.toBlob((blob) => blob && onShot(blob), "image/jpeg", 0.9);
  };

  return (
    <div class="camera" role="dialog" aria-modal="true" aria-label={t("camera.open")} data-state="camera">
      <div class="frame">
        <video ref={video} playsInline muted aria-hidden="true" />
        <div class="oval" aria-hidden="true" />
      </div>
      <p class="guide">{t("camera.guide")}</p>
      <div class="bar">
        <button type="button" class="primary" onClick={take} disabled={!ready} data-action="shoot">
          {t("camera.take")}
        </button>
        <button type="button" onClick={() => onClose()}>
          {t("camera.cancel")}
        </button>
      </div>
    </div>
  );
}

function Grid(props: {
  title: string;
  list: Match[];
  offset: number;
  total: number;
  t: T;
  onOpen: (i: number) => void;
}) {
  const { title, list, offset, total, t, onOpen } = props;
  if (list.length === 0) return null;
  return (
    <section aria-label={title}>
      <h2>{title}</h2>
      <ul class="grid">
        {list.map((m, i) => (
          <li key={m.photo_id}>
            <button type="button" class="tile" onClick={() => onOpen(offset + i)}>
              <img
                src={m.thumb_url}
                alt={t("photo.alt", { n: offset + i + 1, total })}
                loading="lazy"
                decoding="async"
                style={focus(m)}
              />
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

/// Keeps the guest's face in view when a square tile crops the photo.
function focus(m: Match): string {
  if (!m.width || !m.height) return "";
  const [x1, y1, x2, y2] = m.face_box;
  const cx = Math.round(((x1 + x2) / 2 / m.width) * 100);
  const cy = Math.round(((y1 + y2) / 2 / m.height) * 100);
  return `object-position: ${cx}% ${cy}%`;
}

function Viewer(props: {
  list: Match[];
  index: number;
  t: T;
  onMove: (i: number) => void;
  onClose: () => void;
}) {
  const { list, index, t, onMove, onClose } = props;
  const m = list[index];
  const dialog = useRef<HTMLDivElement>(null);
  const touch = useRef<number | null>(null);
  const prev = () => onMove((index - 1 + list.length) % list.length);
  const next = () => onMove((index + 1) % list.length);

  useEffect(() => {
    const keys = (e: KeyboardEvent) => {
      if (e.key === "Escape") onClose();
      else if (e.key === "ArrowLeft") prev();
      else if (e.key === "ArrowRight") next();
    };
    addEventListener("keydown", keys);
    dialog.current?.focus();
    return () => removeEventListener("keydown", keys);
  });

  const share = async () => {
    try {
      await navigator.share({ url: new URL(m.url, location.href).href });
    } catch {
      // dismissed
    }
  };

  return (
    <div
      class="viewer"
      role="dialog"
      aria-modal="true"
      aria-label={t("photo.alt", { n: index + 1, total: list.length })}
      tabIndex={-1}
      ref={dialog}
      onTouchStart={(e) => {
        touch.current = e.touches.length === 1 ? e.touches[0].clientX : null;
      }}
      onTouchEnd={(e) => {
        if (touch.current === null) return;
        const dx = e.changedTouches[0].clientX - touch.current;
        touch.current = null;
        if (Math.abs(dx) > 50) (dx > 0 ? prev : next)();
      }}
    >
      <img src={m.screen_url} alt={t("photo.alt", { n: index + 1, total: list.length })} />
      <div class="bar">
        <button type="button" onClick={prev} aria-label={t("viewer.prev")}>
          ‹
        </button>
        <a class="button" href={m.url} download>
          {t("viewer.download")}
        </a>
        {"share" in navigator ? (
          <button type="button" onClick={() => void share()}>
            {t("viewer.share")}
          </button>
        ) : null}
        <button type="button" onClick={next} aria-label={t("viewer.next")}>
          ›
        </button>
        <button type="button" onClick={onClose} aria-label={t("viewer.close")}>
          ✕
        </button>
      </div>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
