// The gateway's REST API as the guest page uses it (docs: /api/v1/docs/).

export class ApiError extends Error {
  constructor(
    public code: string,
    message: string,
    public status: number,
    /// Seconds the server asks to wait before trying again (Retry-After).
    public retryAfter: number | null = null,
  ) {
    super(message);
  }
}

/// Retry-After in seconds (only the delay form the gateway sends).
function retryAfter(value: string | null): number | null {
  const seconds = value === null ? NaN : Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
}

async function failure(response: Response): Promise<ApiError> {
  const wait = retryAfter(response.headers.get("retry-after"));
  try {
    const body = await response.json();
    return new ApiError(body.error?.code ?? "INTERNAL", body.error?.message ?? "", response.status, wait);
  } catch {
    return new ApiError("INTERNAL", response.statusText, response.status, wait);
  }
}

export async function getJson<T>(url: string): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: "application/json" } });
  } catch {
    throw new ApiError("network", "", 0);
  }
  if (!response.ok) throw await failure(response);
  return response.json() as Promise<T>;
}

/// POSTs a body with upload progress (fetch cannot report it).
export function postWithProgress<T>(
  url: string,
  body: Blob,
  onProgress: (fraction: number) => void,
  signal?: AbortSignal,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("content-type", body.type || "application/octet-stream");
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.upload.onload = () => onProgress(1);
    xhr.onload = () => {
      const body = xhr.response;
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as T);
      else
        reject(
          new ApiError(
            body?.error?.code ?? "INTERNAL",
            body?.error?.message ?? "",
            xhr.status,
            retryAfter(xhr.getResponseHeader("retry-after")),
          ),
        );
    };
    xhr.onerror = () => reject(new ApiError("network", "", 0));
    xhr.onabort = () => reject(new ApiError("aborted", "", 0));
    signal?.addEventListener("abort", () => xhr.abort());
    xhr.send(body);
  });
}

export async function postJson<T>(url: string, body: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError("network", "", 0);
  }
  if (!response.ok) throw await failure(response);
  return response.json() as Promise<T>;
}

export interface GuestEvent {
  name: string;
  event_date: string | null;
  photos: number;
  indexed: number;
  pending: number;
  policy_version: string;
  studio_name: string;
  accent_color: string | null;
  privacy_url: string | null;
  logo_url: string | null;
}

export interface Match {
  photo_id: string;
  similarity: number;
  face_box: number[];
  tier: "match" | "possible";
  url: string;
  thumb_url: string;
  screen_url: string;
  width: number | null;
  height: number | null;
}

export interface SearchResult {
  selfie_face: number[] | null;
  matches: Match[];
}

export interface Forgotten {
  faces_deleted: number;
  photo_ids: string[];
}
