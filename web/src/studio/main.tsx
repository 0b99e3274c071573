// The studio dashboard (/studio): sign in with an API key (exchanged for an
// HttpOnly session cookie), events with their progress, create and delete,
// bulk upload by drag and drop with progress and retries, live indexing,
// photos by status with their faces, and the guest link with a QR code.
import { render } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import qrcode from "qrcode-generator";

import { format, initialLang, type Lang, saveLang } from "../lib/i18n";
import en from "./en.json";
import ru from "./ru.json";
import "./style.css";

type Key = keyof typeof ru;
type T = (key: Key, vars?: Record<string, string | number>) => string;
const tables: Record<Lang, Record<Key, string>> = { ru, en };

interface Session {
  studio_id: string;
  studio_name: string;
  csrf_token: string;
  scopes: string[];
}
interface Counts {
  total: number;
  pending: number;
  indexed: number;
  failed: number;
  retrying: number;
}
interface Branding {
  name: string;
  accent_color: string | null;
  privacy_url: string | null;
  has_logo: boolean;
}
interface EventRow {
  id: string;
  name: string;
  event_date: string | null;
  retain_until: string | null;
  share_token: string;
  guest_url: string;
  share_enabled: boolean;
  share_expires_at: string | null;
  created_at: string;
  photos: Counts;
  faces: number;
}
interface Photo {
  id: string;
  status: "pending" | "retrying" | "indexed" | "failed";
  file_name: string | null;
  external_id: string | null;
  face_count: number;
  failure_code: string | null;
  failure_reason: string | null;
  last_error_code: string | null;
  attempts: number;
  next_attempt_at: string | null;
  width: number | null;
  height: number | null;
}
interface Face {
  id: string;
  box: number[];
}

class Failure extends Error {
  constructor(
    public code: string,
    message: string,
    public status: number,
  ) {
    super(message);
  }
}

let csrf = "";

async function call<R>(method: string, url: string, body?: unknown): Promise<R> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = csrf;
  let payload: BodyInit | undefined;
  if (body instanceof Blob) {
    payload = body;
    headers["content-type"] = body.type || "application/octet-stream";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["content-type"] = "application/json";
  }
  let response: Response;
  try {
    response = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
  } catch {
    throw new Failure("network", "no connection to the server", 0);
  }
  if (response.status === 204) return undefined as R;
  const json = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Failure(json.error?.code ?? "INTERNAL", json.error?.message ?? response.statusText, response.status);
  }
  return json as R;
}

/// One upload of one file, with progress (XMLHttpRequest: fetch reports none).
function send(url: string, file: File, onProgress: (f: number) => void): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("x-csrf-token", csrf);
    xhr.setRequestHeader("content-type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve({ status: xhr.status });
      else {
        let message = xhr.statusText;
        try {
          message = JSON.parse(xhr.responseText).error.message;
        } catch {
          // not JSON
        }
        reject(new Failure("upload", message, xhr.status));
      }
    };
    xhr.onerror = () => reject(new Failure("network", "no connection", 0));
    xhr.send(file);
  });
}

/// A photo's id for idempotent uploads: the same file uploaded again (after
/// a reload, from another tab) is the same photo.
function externalId(file: File): string {
  const path = (file as File & { webkitRelativePath?: string }).webkitRelativePath || file.name;
  return `f:${file.size}:${file.lastModified}:${path}`.slice(0, 200);
}

function App() {
  const [lang, setLang] = useState<Lang>(initialLang);
  const t: T = useMemo(() => (key, vars) => format(tables[lang][key] ?? key, vars), [lang]);
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [open, setOpen] = useState<EventRow | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    document.documentElement.lang = lang;
    document.title = tables[lang].title;
  }, [lang]);
  useEffect(() => {
    call<Session>("GET", "/api/v1/session")
      .then((s) => {
        csrf = s.csrf_token;
        setSession(s);
      })
      .catch(() => setSession(null));
  }, []);

  const fail = (e: unknown) => setError(t("error", { message: e instanceof Error ? e.message : String(e) }));

  const header = (
    <header class="top">
      <strong>{t("title")}</strong>
      <span class="spacer" />
      {session ? <span class="muted">{session.studio_name}</span> : null}
      <button
        type="button"
        class="link"
        onClick={() => {
          const next: Lang = lang === "ru" ? "en" : "ru";
          saveLang(next);
          setLang(next);
        }}
      >
        {t("lang.switch")}
      </button>
      {session ? (
        <button
          type="button"
          class="link"
          onClick={() =>
            call("DELETE", "/api/v1/session")
              .then(() => {
                setSession(null);
                setOpen(null);
              })
              .catch(fail)
          }
        >
          {t("signout")}
        </button>
      ) : null}
    </header>
  );

  return (
    <div class="page">
      {header}
      {error ? (
        <p class="error" role="alert">
          {error}{" "}
          <button type="button" class="link" onClick={() => setError(null)}>
            ✕
          </button>
        </p>
      ) : null}
      {session === undefined ? null : session === null ? (
        <SignIn
          t={t}
          onSession={(s) => {
            csrf = s.csrf_token;
            setSession(s);
          }}
        />
      ) : open ? (
        <EventPage t={t} event={open} onBack={() => setOpen(null)} onError={fail} onChange={setOpen} />
      ) : (
        <Events t={t} onOpen={setOpen} onError={fail} />
      )}
    </div>
  );
}

function SignIn(props: { t: T; onSession: (s: Session) => void }) {
  const { t, onSession } = props;
  const [key, setKey] = useState("");
  const [error, setError] = useState("");
  return (
    <form
      class="card narrow"
      data-state="signin"
      onSubmit={(e) => {
        e.preventDefault();
        setError("");
        call<Session>("POST", "/api/v1/session", { api_key: key })
          .then(onSession)
          .catch((err: Error) => setError(err.message));
      }}
    >
      <h1>{t("signin.title")}</h1>
      <label for="key">{t("signin.key")}</label>
      <input
        id="key"
        type="password"
        autocomplete="off"
        value={key}
        onInput={(e) => setKey((e.currentTarget as HTMLInputElement).value)}
        required
      />
      <p class="muted small">{t("signin.hint")}</p>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <button type="submit" class="primary">
        {t("signin.submit")}
      </button>
    </form>
  );
}

function StudioSettings(props: { t: T; onError: (e: unknown) => void }) {
  const { t, onError } = props;
  const [b, setB] = useState<Branding | null>(null);
  const [saved, setSaved] = useState(false);
  const [logoVersion, setLogoVersion] = useState(0);
  const logo = useRef<HTMLInputElement>(null);
  useEffect(() => {
    call<Branding>("GET", "/api/v1/studio").then(setB).catch(onError);
  }, []);
  if (!b) return null;
  const field = (name: keyof Branding) => (e: Event) => {
    setSaved(false);
    setB({ ...b, [name]: (e.currentTarget as HTMLInputElement).value });
  };
  return (
    <form
      class="card settings"
      data-state="settings"
      onSubmit={(e) => {
        e.preventDefault();
        call<Branding>("PUT", "/api/v1/studio", {
          name: b.name,
          accent_color: b.accent_color ?? "",
          privacy_url: b.privacy_url ?? "",
        })
          .then((next) => {
            setB(next);
            setSaved(true);
          })
          .catch(onError);
      }}
    >
      <h2>{t("settings.title")}</h2>
      <div class="fields">
        <label>
          {t("settings.name")}
          <input id="studio-name" value={b.name} maxLength={200} onInput={field("name")} required />
        </label>
        <label>
          {t("settings.accent")}
          <input id="studio-accent" type="color" value={b.accent_color ?? "#b45309"} onInput={field("accent_color")} />
        </label>
        <label class="wide">
          {t("settings.privacy")}
          <input id="studio-privacy" type="url" value={b.privacy_url ?? ""} placeholder="https://" onInput={field("privacy_url")} />
        </label>
        <div class="wide row wrap">
          {b.has_logo ? <img class="logo" src={`/api/v1/studio/logo?v=${logoVersion}`} alt="" /> : null}
          <label>
            {t("settings.logo")}
            <input
              ref={logo}
              id="studio-logo"
              type="file"
              accept="image/png,image/jpeg,image/webp"
              onChange={(e) => {
                const file = (e.currentTarget as HTMLInputElement).files?.[0];
                if (!file) return;
                call<Branding>("PUT", "/api/v1/studio/logo", file)
                  .then((next) => {
                    setB(next);
                    setLogoVersion((v) => v + 1);
                  })
                  .catch(onError);
              }}
            />
          </label>
          {b.has_logo ? (
            <button type="button" onClick={() => call<Branding>("DELETE", "/api/v1/studio/logo").then(setB).catch(onError)}>
              {t("settings.removeLogo")}
            </button>
          ) : null}
        </div>
      </div>
      <div class="row">
        <button type="submit" class="primary">
          {t("settings.save")}
        </button>
        {saved ? <span class="muted" role="status">{t("settings.saved")}</span> : null}
      </div>
    </form>
  );
}

function EventSettings(props: { t: T; event: EventRow; onChange: (e: EventRow) => void; onError: (e: unknown) => void }) {
  const { t, event, onChange, onError } = props;
  const [name, setName] = useState(event.name);
  const [date, setDate] = useState(event.event_date ?? "");
  const [retain, setRetain] = useState(event.retain_until?.slice(0, 10) ?? "");
  const [saved, setSaved] = useState(false);
  return (
    <form
      class="card"
      data-state="edit-event"
      onSubmit={(e) => {
        e.preventDefault();
        setSaved(false);
        call<EventRow>("PATCH", `/api/v1/events/${event.id}`, { name, event_date: date || null })
          .then(() =>
            call<EventRow>("PUT", `/api/v1/events/${event.id}/retention`, {
              retain_until: retain ? new Date(`${retain}T23:59:59`).toISOString() : null,
            }),
          )
          .then((next) => {
            onChange(next);
            setSaved(true);
          })
          .catch(onError);
      }}
    >
      <h2>{t("edit.title")}</h2>
      <div class="fields">
        <label class="wide">
          {t("edit.name")}
          <input id="event-name" value={name} maxLength={200} required onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          {t("edit.date")}
          <input id="event-date" type="date" value={date} onInput={(e) => setDate((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          {t("edit.retain")}
          <input id="event-retain" type="date" value={retain} onInput={(e) => setRetain((e.currentTarget as HTMLInputElement).value)} />
        </label>
      </div>
      <div class="row">
        <button type="submit" class="primary">
          {t("edit.save")}
        </button>
        {saved ? <span class="muted" role="status">{t("edit.saved")}</span> : null}
      </div>
    </form>
  );
}

function Bar(props: { counts: Counts }) {
  const { total, indexed, failed } = props.counts;
  const pct = (n: number) => (total ? (100 * n) / total : 0);
  return (
    <div class="bar" role="presentation">
      <span class="ok" style={`width:${pct(indexed)}%`} />
      <span class="bad" style={`width:${pct(failed)}%`} />
    </div>
  );
}

function Events(props: { t: T; onOpen: (e: EventRow) => void; onError: (e: unknown) => void }) {
  const { t, onOpen, onError } = props;
  const [events, setEvents] = useState<EventRow[] | null>(null);
  const [name, setName] = useState("");
  const load = () =>
    call<{ events: EventRow[] }>("GET", "/api/v1/events?page_size=200")
      .then((r) => setEvents(r.events))
      .catch(onError);
  useEffect(() => {
    void load();
    const timer = setInterval(load, 5000);
    return () => clearInterval(timer);
  }, []);
  return (
    <main data-state="events">
      <StudioSettings t={t} onError={onError} />
      <h1>{t("events.title")}</h1>
      <form
        class="row card"
        data-state="new-event"
        onSubmit={(e) => {
          e.preventDefault();
          call<EventRow>("POST", "/api/v1/events", { name })
            .then((created) => {
              setName("");
              onOpen(created);
            })
            .catch(onError);
        }}
      >
        <label for="new-event" class="sr">
          {t("events.name")}
        </label>
        <input
          id="new-event"
          placeholder={t("events.new")}
          value={name}
          maxLength={200}
          onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)}
          required
        />
        <button type="submit" class="primary">
          {t("events.create")}
        </button>
      </form>
      {events && events.length === 0 ? <p class="muted">{t("events.empty")}</p> : null}
      <ul class="events">
        {(events ?? []).map((e) => (
          <li key={e.id} class="card">
            <div class="row">
              <h2>{e.name}</h2>
              <span class="spacer" />
              <button type="button" onClick={() => onOpen(e)}>
                {t("events.open")}
              </button>
            </div>
            <Bar counts={e.photos} />
            <p class="muted small">
              {t("events.photos", { indexed: e.photos.indexed, total: e.photos.total })}
              {e.photos.failed ? ` · ${t("events.failed", { failed: e.photos.failed })}` : ""} ·{" "}
              {t("events.faces", { faces: e.faces })}
            </p>
          </li>
        ))}
      </ul>
    </main>
  );
}

interface Item {
  file: File;
  state: "queued" | "sending" | "done" | "skipped" | "failed";
  progress: number;
  error?: string;
  // Part of a large drop (an archive): sent with priority=bulk.
  bulk: boolean;
}

const PARALLEL = 3;
// A drop of this many photos or more is an archive: its photos are indexed
// after photos uploaded one by one during the event (`priority=bulk`).
const BULK_FROM = 20;

function EventPage(props: {
  t: T;
  event: EventRow;
  onBack: () => void;
  onError: (e: unknown) => void;
  onChange: (e: EventRow) => void;
}) {
  const { t, event, onBack, onError, onChange } = props;
  const [counts, setCounts] = useState<Counts>(event.photos);
  const [items, setItems] = useState<Item[]>([]);
  const [filter, setFilter] = useState<"" | "pending" | "retrying" | "indexed" | "failed">("");
  const [photos, setPhotos] = useState<Photo[]>([]);
  const [next, setNext] = useState("");
  const [shown, setShown] = useState<Photo | null>(null);
  const [dragging, setDragging] = useState(false);
  const queue = useRef<Item[]>([]);
  const running = useRef(0);
  const known = useRef<Set<string> | null>(null);
  const folder = useRef<HTMLInputElement>(null);
  const files = useRef<HTMLInputElement>(null);
  const base = `/api/v1/events/${event.id}`;

  const loadPhotos = (after = "") =>
    call<{ photos: Photo[]; next_page_token: string }>(
      "GET",
      `${base}/photos?page_size=60&status=${filter}&page_token=${encodeURIComponent(after)}`,
    )
      .then((r) => {
        setPhotos((old) => (after ? [...old, ...r.photos] : r.photos));
        setNext(r.next_page_token);
      })
      .catch(onError);

  useEffect(() => {
    void loadPhotos();
  }, [filter]);

  // Live progress (Server-Sent Events, with the session cookie).
  useEffect(() => {
    const source = new EventSource(`${base}/watch`);
    source.addEventListener("progress", (m) => {
      const p = JSON.parse((m as MessageEvent).data);
      setCounts(p.photos);
    });
    source.addEventListener("photo", (m) => {
      const p: Photo = JSON.parse((m as MessageEvent).data);
      setPhotos((old) => old.map((o) => (o.id === p.id ? p : o)));
    });
    return () => source.close();
  }, [event.id]);

  const refresh = () => setItems([...queue.current]);

  /// The external ids already in the event: those files are skipped.
  const alreadyThere = async (): Promise<Set<string>> => {
    if (known.current) return known.current;
    const ids = new Set<string>();
    let token = "";
    do {
      const page = await call<{ photos: Photo[]; next_page_token: string }>(
        "GET",
        `${base}/photos?page_size=1000&page_token=${encodeURIComponent(token)}`,
      );
      page.photos.forEach((p) => p.external_id && ids.add(p.external_id));
      token = page.next_page_token;
    } while (token);
    known.current = ids;
    return ids;
  };

  const pump = () => {
    while (running.current < PARALLEL) {
      const item = queue.current.find((i) => i.state === "queued");
      if (!item) break;
      item.state = "sending";
      running.current++;
      const id = externalId(item.file);
      const priority = item.bulk ? "bulk" : "live";
      const url = `${base}/photos?external_id=${encodeURIComponent(id)}&file_name=${encodeURIComponent(item.file.name)}&priority=${priority}`;
      send(url, item.file, (f) => {
        item.progress = f;
        refresh();
      })
        .then(({ status }) => {
          item.state = status === 200 ? "skipped" : "done";
          item.progress = 1;
          known.current?.add(id);
        })
        .catch((e: Error) => {
          item.state = "failed";
          item.error = e.message;
        })
        .finally(() => {
          running.current--;
          refresh();
          pump();
          if (!queue.current.some((i) => i.state === "queued" || i.state === "sending")) void loadPhotos();
        });
    }
    refresh();
  };

  const add = async (list: File[]) => {
    const images = list.filter((f) => f.type.startsWith("image/") || /\.(jpe?g|png|webp|heic|heif|avif)$/i.test(f.name));
    try {
      const there = await alreadyThere();
      for (const file of images) {
        const skipped = there.has(externalId(file));
        queue.current.push({
          file,
          state: skipped ? "skipped" : "queued",
          progress: skipped ? 1 : 0,
          bulk: images.length >= BULK_FROM,
        });
      }
    } catch (e) {
      onError(e);
      return;
    }
    pump();
  };

  const done = items.filter((i) => i.state === "done").length;
  const skipped = items.filter((i) => i.state === "skipped").length;
  const failed = items.filter((i) => i.state === "failed").length;
  const total = items.length;
  const fraction = total ? items.reduce((s, i) => s + i.progress, 0) / total : 0;

  return (
    <main data-state="event">
      <button type="button" class="link" onClick={onBack}>
        {t("back")}
      </button>
      <h1>{event.name}</h1>
      <ShareLink t={t} event={event} onChange={onChange} onError={onError} />
      <EventSettings t={t} event={event} onChange={onChange} onError={onError} />

      <section class="card">
        <h2>{t("progress.title")}</h2>
        <Bar counts={counts} />
        <p class="muted small" role="status" data-progress={JSON.stringify(counts)}>
          {t("progress.live", { ...counts })}
        </p>
      </section>

      <section
        class={`card drop${dragging ? " over" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          void collect(e.dataTransfer).then(add);
        }}
      >
        <h2>{t("upload.title")}</h2>
        <p>{t("upload.drop")}</p>
        <input
          ref={files}
          class="sr"
          type="file"
          accept="image/*,.heic,.heif,.avif"
          multiple
          tabIndex={-1}
          aria-hidden="true"
          onChange={(e) => {
            const input = e.currentTarget as HTMLInputElement;
            void add([...(input.files ?? [])]);
            input.value = "";
          }}
        />
        <input
          ref={folder}
          class="sr"
          type="file"
          multiple
          tabIndex={-1}
          aria-hidden="true"
          {...{ webkitdirectory: "" }}
          onChange={(e) => {
            const input = e.currentTarget as HTMLInputElement;
            void add([...(input.files ?? [])]);
            input.value = "";
          }}
        />
        <div class="row">
          <button type="button" class="primary" onClick={() => files.current?.click()}>
            {t("upload.choose")}
          </button>
          <button type="button" onClick={() => folder.current?.click()}>
            {t("upload.folder")}
          </button>
        </div>
        {total ? (
          <div class="uploads" data-uploads={JSON.stringify({ total, done, skipped, failed })}>
            <progress max={1} value={fraction} aria-label={t("upload.total", { done: done + skipped, total })} />
            <p class="small" role="status">
              {t("upload.total", { done: done + skipped, total })}
              {skipped ? ` · ${t("upload.skipped", { skipped })}` : ""}
              {failed ? ` · ${t("upload.failed", { failed })}` : ""}
            </p>
            {failed ? (
              <button
                type="button"
                onClick={() => {
                  queue.current.forEach((i) => {
                    if (i.state === "failed") {
                      i.state = "queued";
                      i.progress = 0;
                    }
                  });
                  pump();
                }}
              >
                {t("upload.retry")}
              </button>
            ) : null}
            <ul class="files">
              {items
                .filter((i) => i.state !== "done" && i.state !== "skipped")
                .slice(0, 12)
                .map((i) => (
                  <li key={i.file.name + i.file.size}>
                    <span>{i.file.name}</span>
                    <progress max={1} value={i.progress} />
                    {i.error ? <span class="bad-text">{i.error}</span> : null}
                  </li>
                ))}
            </ul>
          </div>
        ) : null}
      </section>

      <section class="card">
        <div class="row">
          <h2>{t("photos.title")}</h2>
          <span class="spacer" />
          <div class="tabs" role="tablist">
            {(["", "pending", "retrying", "indexed", "failed"] as const).map((f) => (
              <button
                type="button"
                role="tab"
                data-filter={f || "all"}
                aria-selected={filter === f}
                class={filter === f ? "on" : ""}
                onClick={() => setFilter(f)}
              >
                {t(f === "" ? "photos.all" : (`photos.${f}` as Key))}
              </button>
            ))}
          </div>
        </div>
        {photos.length === 0 ? <p class="muted">{t("photos.none")}</p> : null}
        <ul class="thumbs">
          {photos.map((p) => (
            <li key={p.id} data-status={p.status}>
              <button type="button" onClick={() => setShown(p)} title={p.file_name ?? p.id}>
                {p.status === "indexed" ? (
                  <img src={`/api/v1/photos/${p.id}/image?size=thumb`} alt={p.file_name ?? ""} loading="lazy" />
                ) : (
                  <span class={`placeholder ${p.status}`}>{t(`photos.${p.status}` as Key)}</span>
                )}
              </button>
              {p.status === "failed" ? <p class="bad-text small">{p.failure_reason}</p> : null}
              {p.status === "retrying" ? <p class="muted small">{p.last_error_code}</p> : null}
            </li>
          ))}
        </ul>
        {counts.failed ? (
          <button
            type="button"
            data-action="retry-failed"
            onClick={() =>
              call<{ photos_requeued: number }>("POST", `${base}/retry-failed`, {})
                .then((r) => {
                  alert(t("photos.requeued", { count: r.photos_requeued }));
                  void loadPhotos();
                })
                .catch(onError)
            }
          >
            {t("photos.retryFailed", { failed: counts.failed })}
          </button>
        ) : null}
        {next ? (
          <button type="button" onClick={() => void loadPhotos(next)}>
            {t("photos.more")}
          </button>
        ) : null}
      </section>

      <button
        type="button"
        class="danger"
        onClick={() => {
          if (!confirm(t("events.deleteConfirm", { name: event.name }))) return;
          call("DELETE", base).then(onBack).catch(onError);
        }}
      >
        {t("events.delete")}
      </button>

      {shown ? (
        <PhotoView
          t={t}
          photo={shown}
          onClose={() => setShown(null)}
          onDeleted={() => {
            setPhotos((old) => old.filter((p) => p.id !== shown.id));
            setShown(null);
          }}
          onRetried={(p) => {
            setPhotos((old) => old.map((o) => (o.id === p.id ? p : o)));
            setShown(p);
          }}
          onError={onError}
        />
      ) : null}
    </main>
  );
}

/// The files of a drop, folders walked.
async function collect(data: DataTransfer | null): Promise<File[]> {
  if (!data) return [];
  const entries = [...data.items]
    .map((i) => (i as DataTransferItem & { webkitGetAsEntry?: () => FileSystemEntry | null }).webkitGetAsEntry?.())
    .filter((e): e is FileSystemEntry => !!e);
  if (entries.length === 0) return [...data.files];
  const out: File[] = [];
  const walk = async (entry: FileSystemEntry): Promise<void> => {
    if (entry.isFile) {
      out.push(await new Promise<File>((ok, no) => (entry as FileSystemFileEntry).file(ok, no)));
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((ok, no) => reader.readEntries(ok, no));
        if (batch.length === 0) break;
        for (const e of batch) await walk(e);
      }
    }
  };
  for (const e of entries) await walk(e);
  return out;
}

function PhotoView(props: {
  t: T;
  photo: Photo;
  onClose: () => void;
  onDeleted: () => void;
  onRetried: (p: Photo) => void;
  onError: (e: unknown) => void;
}) {
  const { t, photo, onClose, onDeleted, onRetried, onError } = props;
  const [faces, setFaces] = useState<Face[]>([]);
  useEffect(() => {
    if (photo.status === "indexed")
      call<{ faces: Face[] }>("GET", `/api/v1/photos/${photo.id}/faces`).then((r) => setFaces(r.faces)).catch(onError);
    const keys = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    addEventListener("keydown", keys);
    return () => removeEventListener("keydown", keys);
  }, [photo.id]);
  const w = photo.width ?? 1;
  const h = photo.height ?? 1;
  return (
    <div class="modal" role="dialog" aria-modal="true" aria-label={photo.file_name ?? photo.id}>
      <div class="sheet">
        <div class="row">
          <strong>{photo.file_name ?? photo.id}</strong>
          <span class="spacer" />
          <button type="button" onClick={onClose} aria-label={t("photos.close")}>
            ✕
          </button>
        </div>
        {photo.status === "indexed" ? (
          <div class="framed">
            <img src={`/api/v1/photos/${photo.id}/image?size=screen`} alt={photo.file_name ?? ""} />
            <svg viewBox={`0 0 ${w} ${h}`} preserveAspectRatio="none" aria-hidden="true">
              {faces.map((f) => (
                <rect
                  x={f.box[0]}
                  y={f.box[1]}
                  width={f.box[2] - f.box[0]}
                  height={f.box[3] - f.box[1]}
                  vector-effect="non-scaling-stroke"
                />
              ))}
            </svg>
          </div>
        ) : (
          <p class={photo.status === "failed" ? "bad-text" : "muted"}>
            {photo.failure_code
              ? `${photo.failure_code}: ${photo.failure_reason}`
              : photo.status === "retrying"
                ? t("photos.retryingInfo", {
                    attempts: photo.attempts,
                    code: photo.last_error_code ?? "",
                    at: photo.next_attempt_at ? new Date(photo.next_attempt_at).toLocaleTimeString() : "",
                  })
                : t(`photos.${photo.status}` as Key)}
          </p>
        )}
        <div class="row">
          <span class="muted" data-faces={faces.length}>
            {t("photos.faces", { count: photo.face_count })}
          </span>
          <span class="spacer" />
          {photo.status === "failed" ? (
            <button
              type="button"
              data-action="retry"
              onClick={() => call<Photo>("POST", `/api/v1/photos/${photo.id}/retry`).then(onRetried).catch(onError)}
            >
              {t("photos.retry")}
            </button>
          ) : null}
          <button
            type="button"
            class="danger"
            onClick={() => {
              if (!confirm(t("photos.deleteConfirm"))) return;
              call("DELETE", `/api/v1/photos/${photo.id}`).then(onDeleted).catch(onError);
            }}
          >
            {t("photos.delete")}
          </button>
        </div>
      </div>
    </div>
  );
}

function ShareLink(props: { t: T; event: EventRow; onChange: (e: EventRow) => void; onError: (e: unknown) => void }) {
  const { t, event, onChange, onError } = props;
  const url = new URL(event.guest_url, location.href).href;
  const [copied, setCopied] = useState(false);
  const [until, setUntil] = useState(event.share_expires_at?.slice(0, 10) ?? "");
  const qr = useMemo(() => {
    const code = qrcode(0, "M");
    code.addData(url);
    code.make();
    return code;
  }, [url]);
  const n = qr.getModuleCount();
  const cells: string[] = [];
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (qr.isDark(r, c)) cells.push(`M${c} ${r}h1v1h-1z`);
  const update = (enabled: boolean, expires: string) =>
    call<EventRow>("PUT", `/api/v1/events/${event.id}/share-link`, {
      enabled,
      expires_at: expires ? new Date(`${expires}T23:59:59`).toISOString() : null,
    })
      .then(onChange)
      .catch(onError);
  return (
    <section class="card share" data-state="share">
      <h2>{t("share.title")}</h2>
      <div class="row wrap">
        <svg class="qr" viewBox={`-2 -2 ${n + 4} ${n + 4}`} role="img" aria-label={url} data-modules={n}>
          <rect x="-2" y="-2" width={n + 4} height={n + 4} fill="#fff" />
          <path d={cells.join("")} fill="#000" />
        </svg>
        <div class="grow">
          <p>
            <a href={url} target="_blank" rel="noopener" data-guest-url>
              {url}
            </a>
          </p>
          {!event.share_enabled ? <p class="bad-text">{t("share.off")}</p> : null}
          <div class="row wrap">
            <button
              type="button"
              onClick={() =>
                navigator.clipboard.writeText(url).then(
                  () => setCopied(true),
                  () => setCopied(false),
                )
              }
            >
              {copied ? t("share.copied") : t("share.copy")}
            </button>
            <button
              type="button"
              onClick={() => {
                if (!confirm(t("share.rotateConfirm"))) return;
                call<EventRow>("POST", `/api/v1/events/${event.id}/share-link/rotate`).then(onChange).catch(onError);
              }}
            >
              {t("share.rotate")}
            </button>
            <button type="button" onClick={() => void update(!event.share_enabled, until)}>
              {event.share_enabled ? t("share.disable") : t("share.enable")}
            </button>
          </div>
          <div class="row wrap">
            <label for="until">{t("share.expires")}</label>
            <input id="until" type="date" value={until} onInput={(e) => setUntil((e.currentTarget as HTMLInputElement).value)} />
            <button type="button" onClick={() => void update(event.share_enabled, until)}>
              {t("share.save")}
            </button>
          </div>
        </div>
      </div>
    </section>
  );
}

render(<App />, document.getElementById("app")!);
