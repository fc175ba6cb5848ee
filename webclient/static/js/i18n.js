// Russian and English strings, chosen by the browser language.

const en = {
  appName: 'Vestnik',
  login: 'Login', password: 'Password', signIn: 'Sign in', signingIn: 'Signing in…',
  badLogin: 'Wrong login or password', loginFailed: 'Could not sign in, try again',
  loginHint: 'Use your company account',
  search: 'Search', chats: 'Chats', company: 'Company',
  noChats: 'No conversations yet. Pick a colleague in “Company”.',
  nothingFound: 'Nothing found',
  online: 'online', away: 'away', dnd: 'do not disturb', offline: 'offline',
  setOnline: 'Online', setAway: 'Away', setDnd: 'Do not disturb',
  lastSeen: 'last seen {when}', justNow: 'just now', minutesAgo: '{n} min ago',
  today: 'Today', yesterday: 'Yesterday', at: '{day} at {time}',
  typing: 'typing…', typingIn: '{name} is typing…',
  writeMessage: 'Write a message…', send: 'Send',
  buttons: 'Buttons', copied: 'Copied',
  edit: 'Edit', react: 'React', reply: 'Reply', replyTo: 'Reply to', earlierMessage: 'an earlier message', delete: 'Delete', cancel: 'Cancel', save: 'Save', editing: 'Editing',
  edited: 'edited', deleted: 'Message deleted', deleteConfirm: 'Delete this message?',
  you: 'You', system: 'System',
  pickConversation: 'Select a chat to start messaging',
  profile: 'Profile', title: 'Title', department: 'Department', manager: 'Manager', email: 'Email',
  showCorrespondence: 'Show correspondence', writeTo: 'Write a message',
  notifications: 'Notifications', noNotifications: 'No notifications', noteActions: 'Answer', noteChosen: '{title} (chosen)',
  markAllRead: 'Mark all as read', logout: 'Log out', back: 'Back',
  connecting: 'Connecting…', reconnecting: 'No connection. Reconnecting…',
  members: '{n} members', groupChat: 'Group chat', loadingHistory: 'Loading…',
  chatId: 'Chat id', leaveChat: 'Leave chat', leaveConfirm: 'Leave the chat “{title}”?',
  historyStart: 'This is the beginning of your conversation',
  newMessage: 'New message', error: 'Error',
  status: 'Status', employees: '{n}',
  close: 'Close', newChat: 'New chat', browseChats: 'Open chats', searchChats: 'Search chats',
  joinChat: 'Join', openChat: 'Open', openChat_: 'Open chat', closedChat: 'Closed chat',
  closedChatHint: 'only members can add people', chatTitle: 'Chat title', chatDescription: 'Description',
  color: 'Color', chatAvatar: 'Chat picture', removeAvatar: 'Remove the picture', membersPick: 'Members',
  createChat: 'Create', searchPeople: 'Find colleagues', removeFromList: 'Remove {name} from the list',
  chatInfo: 'Chat info', membersTitle: 'Members', roleOwner: 'owner', removeMember: 'Remove {name}',
  removeConfirm: 'Remove {name} from “{title}”?', editChat: 'Edit chat', addMembers: 'Add members',
  showHistory: 'Show them the earlier history', add: 'Add', pickSomeone: 'Pick at least one colleague',
  mute: 'Mute', unmute: 'Unmute', muted: 'muted', attachFile: 'Attach file', attachments: 'Attachments',
  uploading: 'Uploading {name}', cancelUpload: 'Cancel upload', removeFile: 'Remove file',
  openImage: 'Open image {name}', download: 'Download {name}', dropHere: 'Drop files to send them',
  seenBy: 'Seen by {n}', seenByNames: 'Seen by {n}: {names}', seenByTitle: 'Seen by',
  newMessages: 'New messages', jumpUnread: 'Jump to the first unread message', jumpBottom: 'Jump to the latest messages',
  openProfile: 'Profile of {name}', imageViewer: 'Image',
  emoji: 'Emoji', changePhoto: 'Change photo', removePhoto: 'Remove photo', photoOf: 'Photo of {name}', chooseFile: 'Choose file',
  notifySettings: 'Notifications', desktopAlerts: 'Desktop notifications', alertSound: 'Notification sound',
  noticeJoined: '{names} joined the chat', noticeAdded: '{actor} added {names}', noticeLeft: '{names} left the chat',
  noticeRemoved: '{actor} removed {names}', noticeClosed: 'The chat was closed', noticeClosedBy: '{actor} closed the chat',
  err_not_image: 'The photo must be a PNG, JPEG or GIF image', err_photo_too_large: 'The photo is larger than 10 MB',
  messageActions: 'Message actions', reactionBy: '{emoji} {n}: {names}', jumpToQuoted: 'Go to the quoted message', mentionSomeone: 'Mention a member',
  color_RED: 'Red', color_GREEN: 'Green', color_MINT: 'Mint', color_LIGHT_BLUE: 'Light blue', color_DARK_BLUE: 'Dark blue',
  color_PURPLE: 'Purple', color_AQUA: 'Aqua', color_PINK: 'Pink', color_LIME: 'Lime', color_BROWN: 'Brown',
  color_AZURE: 'Azure', color_KHAKI: 'Khaki', color_SAND: 'Sand', color_MARENGO: 'Marengo', color_GRAY: 'Gray', color_GRAPHITE: 'Graphite',
  err_file_too_large: 'The file is larger than this server allows', err_quota_exceeded: 'Your storage quota is used up',
  err_bad_file: 'The file is empty or has no name', err_upload_failed: 'The upload failed; check the connection and try again',
  err_bad_files: 'These files cannot be sent', err_forbidden: 'You are not allowed to do that', err_not_found: 'Not found',
  err_empty_title: 'Give the chat a title', err_title_too_long: 'The title is too long', err_unknown_color: 'Pick a color from the list',
  err_invalid_avatar: 'The picture must be a PNG, JPEG, GIF or WebP image', err_too_many_users: 'Too many people at once',
  err_missing_users: 'Pick at least one colleague', err_unknown_user: 'An unknown colleague was picked',
  err_disconnected: 'No connection; try again in a moment', err_rate_limited: 'Too fast; try again in a moment',
};

const ru = {
  appName: 'Вестник',
  login: 'Логин', password: 'Пароль', signIn: 'Войти', signingIn: 'Вход…',
  badLogin: 'Неверный логин или пароль', loginFailed: 'Не удалось войти, попробуйте ещё раз',
  loginHint: 'Войдите под учётной записью компании',
  search: 'Поиск', chats: 'Чаты', company: 'Компания',
  noChats: 'Бесед пока нет. Выберите коллегу во вкладке «Компания».',
  nothingFound: 'Ничего не найдено',
  online: 'в сети', away: 'отошёл', dnd: 'не беспокоить', offline: 'не в сети',
  setOnline: 'В сети', setAway: 'Отошёл', setDnd: 'Не беспокоить',
  lastSeen: 'был(а) {when}', justNow: 'только что', minutesAgo: '{n} мин назад',
  today: 'Сегодня', yesterday: 'Вчера', at: '{day} в {time}',
  typing: 'печатает…', typingIn: '{name} печатает…',
  writeMessage: 'Напишите сообщение…', send: 'Отправить',
  buttons: 'Кнопки', copied: 'Скопировано',
  edit: 'Изменить', react: 'Реакция', reply: 'Ответить', replyTo: 'Ответ для', earlierMessage: 'более раннее сообщение', delete: 'Удалить', cancel: 'Отмена', save: 'Сохранить', editing: 'Редактирование',
  edited: 'изменено', deleted: 'Сообщение удалено', deleteConfirm: 'Удалить это сообщение?',
  you: 'Вы', system: 'Система',
  pickConversation: 'Выберите чат, чтобы начать общение',
  profile: 'Профиль', title: 'Должность', department: 'Отдел', manager: 'Руководитель', email: 'Почта',
  showCorrespondence: 'Показать переписку', writeTo: 'Написать сообщение',
  notifications: 'Уведомления', noNotifications: 'Уведомлений нет', noteActions: 'Ответ', noteChosen: '{title} (выбрано)',
  markAllRead: 'Прочитать все', logout: 'Выйти', back: 'Назад',
  connecting: 'Подключение…', reconnecting: 'Нет соединения. Переподключаемся…',
  members: 'участников: {n}', groupChat: 'Групповой чат', loadingHistory: 'Загрузка…',
  chatId: 'ID чата', leaveChat: 'Покинуть чат', leaveConfirm: 'Покинуть чат «{title}»?',
  historyStart: 'Это начало вашей переписки',
  newMessage: 'Новое сообщение', error: 'Ошибка',
  status: 'Статус', employees: '{n}',
  close: 'Закрыть', newChat: 'Новый чат', browseChats: 'Открытые чаты', searchChats: 'Поиск чатов',
  joinChat: 'Вступить', openChat: 'Открыть', openChat_: 'Открытый чат', closedChat: 'Закрытый чат',
  closedChatHint: 'добавлять людей могут только участники', chatTitle: 'Название чата', chatDescription: 'Описание',
  color: 'Цвет', chatAvatar: 'Картинка чата', removeAvatar: 'Убрать картинку', membersPick: 'Участники',
  createChat: 'Создать', searchPeople: 'Найти коллег', removeFromList: 'Убрать {name} из списка',
  chatInfo: 'О чате', membersTitle: 'Участники', roleOwner: 'владелец', removeMember: 'Исключить {name}',
  removeConfirm: 'Исключить {name} из «{title}»?', editChat: 'Изменить чат', addMembers: 'Добавить участников',
  showHistory: 'Показать им прежнюю историю', add: 'Добавить', pickSomeone: 'Выберите хотя бы одного коллегу',
  mute: 'Отключить уведомления', unmute: 'Включить уведомления', muted: 'без звука', attachFile: 'Прикрепить файл', attachments: 'Вложения',
  uploading: 'Загрузка {name}', cancelUpload: 'Отменить загрузку', removeFile: 'Убрать файл',
  openImage: 'Открыть изображение {name}', download: 'Скачать {name}', dropHere: 'Отпустите файлы, чтобы отправить',
  seenBy: 'Просмотрено: {n}', seenByNames: 'Просмотрено: {n} — {names}', seenByTitle: 'Просмотрено',
  newMessages: 'Новые сообщения', jumpUnread: 'К первому непрочитанному', jumpBottom: 'К последним сообщениям',
  openProfile: 'Профиль: {name}', imageViewer: 'Изображение',
  emoji: 'Эмодзи', changePhoto: 'Изменить фото', removePhoto: 'Удалить фото', photoOf: 'Фото: {name}', chooseFile: 'Выбрать файл',
  notifySettings: 'Уведомления', desktopAlerts: 'Уведомления на рабочем столе', alertSound: 'Звук уведомлений',
  noticeJoined: '{names} вступил(а) в чат', noticeAdded: '{actor} добавил(а) в чат: {names}', noticeLeft: '{names} покинул(а) чат',
  noticeRemoved: '{actor} исключил(а) из чата: {names}', noticeClosed: 'Чат закрыт', noticeClosedBy: '{actor} закрыл(а) чат',
  err_not_image: 'Фото должно быть изображением PNG, JPEG или GIF', err_photo_too_large: 'Фото больше 10 МБ',
  messageActions: 'Действия с сообщением', reactionBy: '{emoji} {n}: {names}', jumpToQuoted: 'Перейти к цитируемому сообщению', mentionSomeone: 'Упомянуть участника',
  color_RED: 'Красный', color_GREEN: 'Зелёный', color_MINT: 'Мятный', color_LIGHT_BLUE: 'Голубой', color_DARK_BLUE: 'Тёмно-синий',
  color_PURPLE: 'Фиолетовый', color_AQUA: 'Бирюзовый', color_PINK: 'Розовый', color_LIME: 'Лаймовый', color_BROWN: 'Коричневый',
  color_AZURE: 'Лазурный', color_KHAKI: 'Хаки', color_SAND: 'Песочный', color_MARENGO: 'Маренго', color_GRAY: 'Серый', color_GRAPHITE: 'Графитовый',
  err_file_too_large: 'Файл больше, чем разрешает сервер', err_quota_exceeded: 'Место для ваших файлов закончилось',
  err_bad_file: 'Файл пустой или без имени', err_upload_failed: 'Не удалось загрузить файл; проверьте связь и попробуйте ещё раз',
  err_bad_files: 'Эти файлы нельзя отправить', err_forbidden: 'У вас нет на это прав', err_not_found: 'Не найдено',
  err_empty_title: 'Укажите название чата', err_title_too_long: 'Название слишком длинное', err_unknown_color: 'Выберите цвет из списка',
  err_invalid_avatar: 'Картинка должна быть PNG, JPEG, GIF или WebP', err_too_many_users: 'Слишком много людей сразу',
  err_missing_users: 'Выберите хотя бы одного коллегу', err_unknown_user: 'Выбран неизвестный коллега',
  err_disconnected: 'Нет соединения; попробуйте через минуту', err_rate_limited: 'Слишком быстро; попробуйте чуть позже',
};

export const dictionaries = { en, ru };

// pickLang returns 'ru' or 'en' for a list of browser languages (navigator.languages).
export function pickLang(langs) {
  for (const l of langs || []) {
    const base = String(l).toLowerCase().split(/[-_]/)[0];
    if (base === 'ru' || base === 'uk' || base === 'be' || base === 'kk') return 'ru';
    if (base === 'en') return 'en';
  }
  return 'en';
}

// makeT returns a translation function: t('key', {n: 3}).
export function makeT(lang) {
  const d = dictionaries[lang] || en;
  return (key, vars) => {
    let s = d[key] ?? en[key] ?? key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  };
}
