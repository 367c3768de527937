// A small error toast: mutations report their failures here (the optimistic change has already
// been rolled back by the client when this shows).
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';

interface Toast {
  id: number;
  message: string;
}

const ReportContext = createContext<(error: unknown) => void>(() => undefined);

/** Returns a function that shows an error toast. */
export function useReportError(): (error: unknown) => void {
  return useContext(ReportContext);
}

let nextId = 1;

export function ErrorToasts({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const report = useCallback((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    setToasts((t) => [...t.slice(-2), { id: nextId++, message }]);
  }, []);
  const dismiss = useCallback((id: number) => setToasts((t) => t.filter((x) => x.id !== id)), []);
  return (
    <ReportContext.Provider value={report}>
      {children}
      <div className="toasts" aria-live="polite">
        {toasts.map((t) => (
          <ToastView key={t.id} toast={t} onDismiss={dismiss} />
        ))}
      </div>
    </ReportContext.Provider>
  );
}

function ToastView({ toast, onDismiss }: { toast: Toast; onDismiss: (id: number) => void }) {
  useEffect(() => {
    const t = setTimeout(() => onDismiss(toast.id), 8000);
    return () => clearTimeout(t);
  }, [onDismiss, toast.id]);
  return (
    <div className="toast" role="alert" data-testid="error">
      <span>{toast.message}</span>
      <button type="button" className="link" onClick={() => onDismiss(toast.id)} aria-label="Dismiss">
        ×
      </button>
    </div>
  );
}
